"""Archway: one shop backend in every backend API architecture pattern."""

__version__ = "0.1.0"

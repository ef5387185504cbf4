"""Maintenance tools run from the Makefile."""

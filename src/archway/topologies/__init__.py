"""Composition roots, one per deployment pattern: monolith (more follow)."""

"""The process heap after start-up: moved out of the cyclic garbage collector's way.

A served app holds a few hundred thousand long-lived objects (modules, FastAPI's routes and
models, SQLAlchemy's metadata and compiled statements), and a full (generation 2) collection
walks all of them, stopping every request while it does. :func:`freeze_startup_heap` collects
once and then freezes what is left (:func:`gc.freeze`), so later collections only walk objects
made since. What it measured: the Decisions in ``docs/architecture.md``.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect, then move every surviving object to the permanent generation; returns how
    many objects are frozen. Call once, when start-up is complete and before serving."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

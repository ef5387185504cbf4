"""The start-up heap is frozen, so full collections later skip it."""

from __future__ import annotations

import gc

from archway.kernel.heap import freeze_startup_heap


def test_the_startup_heap_is_frozen_out_of_later_collections() -> None:
    try:
        frozen = freeze_startup_heap()
        assert frozen == gc.get_freeze_count() > 1000  # the modules loaded, at least
        assert gc.get_count()[2] == 0  # nothing left in the oldest generation to walk
    finally:
        gc.unfreeze()

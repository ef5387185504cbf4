"""The SQLite writer thread: urgent units first, the rest in arrival order, errors handed back."""

from __future__ import annotations

import threading

import pytest

from archway.kernel.sqlite_writer import WriterThread


def test_urgent_units_overtake_the_queued_ones_and_order_holds_within_each_kind() -> None:
    writer = WriterThread("test-writer")
    gate = threading.Event()
    ran: list[str] = []
    blocker = writer.submit(False, gate.wait)  # holds the thread while the queue fills
    futures = [writer.submit(urgent, ran.append, name)
               for urgent, name in ((False, "request-1"), (True, "event-1"),
                                    (False, "request-2"), (True, "event-2"))]
    gate.set()
    for future in [blocker, *futures]:
        future.result(timeout=5)
    assert ran == ["event-1", "event-2", "request-1", "request-2"]
    writer.shutdown()


def test_an_error_reaches_the_caller_and_shutdown_runs_what_is_queued() -> None:
    writer = WriterThread("test-writer")

    def fail() -> None:
        raise LookupError("no such row")

    with pytest.raises(LookupError):
        writer.submit(False, fail).result(timeout=5)
    ran: list[int] = []
    futures = [writer.submit(False, ran.append, n) for n in range(3)]
    writer.shutdown()
    assert ran == [0, 1, 2] and all(f.done() for f in futures)
    with pytest.raises(RuntimeError):
        writer.submit(False, ran.append, 4)

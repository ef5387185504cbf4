"""SQLite's single writer thread, with a queue that serves urgent units of work first.

SQLite runs one write transaction at a time, so every write of the process goes through one
thread (see :mod:`archway.kernel.db`). Under a load of commands that queue can hold hundreds of
request transactions; the units that keep events flowing (a relay's consumers and marks) would
wait behind all of them, and the saga and read models would fall further behind the longer the
load lasts. Those units are *urgent*: they are served before the queued ones, in order among
themselves. Requests still run in arrival order.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_URGENT, _NORMAL, _STOP = 0, 1, 2


class WriterThread:
    def __init__(self, name: str) -> None:
        self._queue: queue.PriorityQueue[tuple[int, int, Any, Any]] = queue.PriorityQueue()
        self._order = itertools.count()
        self._stopped = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, urgent: bool, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the thread: before every queued normal unit if ``urgent``."""
        if self._stopped:
            raise RuntimeError("the writer thread is shut down")
        future: Future[T] = Future()
        self._queue.put((_URGENT if urgent else _NORMAL, next(self._order), future,
                         (fn, args)))
        return future

    def shutdown(self) -> None:
        """Run what is queued, then stop the thread (waits for it)."""
        if not self._stopped:
            self._stopped = True
            self._queue.put((_STOP, next(self._order), None, None))
            self._thread.join()

    def _serve(self) -> None:
        while True:
            rank, _order, future, call = self._queue.get()
            if rank == _STOP:
                return
            if not future.set_running_or_notify_cancel():
                continue
            fn, args = call
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(exc)
            else:
                future.set_result(result)

"""A small per-process cache whose entries expire after a fixed time, loaded single-flight.

For hot, public reads that may be a moment stale: a process drops the entries its own writes
touch at once, and sees other processes' writes when the entries expire. When an entry expires
under load, the callers that miss it share one load instead of all querying the database at
once (which, on one core, shows as a latency spike every TTL). A load that started before a
drop does not store its (possibly stale) answer. Bounded by clearing when full, which for
entries this short-lived costs almost nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Task[V]] = {}
        self._generation = 0

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, else ``load()``'s, shared with concurrent callers of the same key.
        What ``load`` raises reaches every caller waiting for it and is not cached."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        task = self._loading.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, load, self._generation))
            self._loading[key] = task
            task.add_done_callback(lambda done: self._loaded(key, done))
        return await asyncio.shield(task)

    def drop(self, *keys: K) -> None:
        self._generation += 1
        for key in keys:
            self._entries.pop(key, None)
            self._loading.pop(key, None)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._loading.clear()

    async def _load(self, key: K, load: Callable[[], Awaitable[V]], generation: int) -> V:
        value = await load()
        if self._ttl > 0 and generation == self._generation:
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + self._ttl, value)
        return value

    def _loaded(self, key: K, task: asyncio.Task[V]) -> None:
        if self._loading.get(key) is task:
            del self._loading[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so a load nobody awaited any more logs nothing

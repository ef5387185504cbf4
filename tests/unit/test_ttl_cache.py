"""The per-process TTL cache: expiry, drops, and one shared load per key."""

from __future__ import annotations

import asyncio

import pytest

from archway.kernel.errors import NotFound
from archway.kernel.ttl_cache import TtlCache


class Source:
    """A stand-in for the database: counts loads, and can hold them until released."""

    def __init__(self) -> None:
        self.loads = 0
        self.value = "v1"
        self.gate = asyncio.Event()
        self.gate.set()

    async def load(self) -> str:
        self.loads += 1
        value = self.value
        await self.gate.wait()
        return value


async def test_a_value_is_loaded_once_then_served_until_it_expires() -> None:
    source, cache = Source(), TtlCache[str, str](ttl_seconds=0.05)
    assert await cache.get_or_load("k", source.load) == "v1"
    source.value = "v2"
    assert await cache.get_or_load("k", source.load) == "v1"
    await asyncio.sleep(0.06)
    assert await cache.get_or_load("k", source.load) == "v2"
    assert source.loads == 2


async def test_concurrent_misses_share_one_load() -> None:
    source, cache = Source(), TtlCache[str, str](ttl_seconds=10)
    source.gate.clear()
    waiters = [asyncio.ensure_future(cache.get_or_load("k", source.load)) for _ in range(20)]
    await asyncio.sleep(0)
    source.gate.set()
    assert await asyncio.gather(*waiters) == ["v1"] * 20
    assert source.loads == 1


async def test_a_drop_forgets_the_value() -> None:
    source, cache = Source(), TtlCache[str, str](ttl_seconds=10)
    await cache.get_or_load("k", source.load)
    source.value = "v2"
    cache.drop("k")
    assert await cache.get_or_load("k", source.load) == "v2"


async def test_a_load_that_began_before_a_drop_does_not_store_its_stale_answer() -> None:
    source, cache = Source(), TtlCache[str, str](ttl_seconds=10)
    source.gate.clear()
    slow = asyncio.ensure_future(cache.get_or_load("k", source.load))
    while not source.loads:
        await asyncio.sleep(0)
    cache.drop("k")  # a write committed while the load was reading
    source.value = "v2"
    source.gate.set()
    assert await slow == "v1"
    assert await cache.get_or_load("k", source.load) == "v2"
    assert source.loads == 2


async def test_failures_reach_every_waiter_and_are_not_cached() -> None:
    cache = TtlCache[str, str](ttl_seconds=10)
    calls = 0

    async def missing() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise NotFound()

    results = await asyncio.gather(
        *(cache.get_or_load("k", missing) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(result, NotFound) for result in results)
    with pytest.raises(NotFound):
        await cache.get_or_load("k", missing)
    assert calls == 2


async def test_a_zero_ttl_never_stores() -> None:
    source, cache = Source(), TtlCache[str, str](ttl_seconds=0)
    await cache.get_or_load("k", source.load)
    await cache.get_or_load("k", source.load)
    assert source.loads == 2


async def test_clear_empties_everything() -> None:
    source, cache = Source(), TtlCache[str, str](ttl_seconds=10, max_entries=2)
    for key in ("a", "b", "c"):
        await cache.get_or_load(key, source.load)
    cache.clear()
    await cache.get_or_load("a", source.load)
    assert source.loads == 4

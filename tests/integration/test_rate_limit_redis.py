"""The Redis store's moving windows, on the real Redis: one window for every client, exact
under concurrent hits (sent in one pipeline), after its scripts are flushed; and a Redis that
does not answer is said to be unavailable."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from archway.kernel.ratelimit.windows import RedisWindows, StoreUnavailable
from tests.redis_server import require_redis


@pytest.fixture
async def shared() -> AsyncIterator[RedisWindows]:
    windows = RedisWindows(require_redis(), timeout_seconds=2)
    yield windows
    await windows.close()


async def test_redis_admits_exactly_the_limit_of_concurrent_hits(shared: RedisWindows) -> None:
    key = f"test:{uuid.uuid4()}"
    windows = await asyncio.gather(*(shared.hit(key, 10, 60) for _ in range(40)))
    assert sum(window.admitted for window in windows) == 10
    assert sorted(window.used for window in windows if window.admitted) == list(range(1, 11))
    assert all(window.used == 10 for window in windows if not window.admitted)
    assert all(59 < window.frees_in <= 60 for window in windows)


async def test_two_clients_of_one_redis_share_a_window(shared: RedisWindows) -> None:
    other = RedisWindows(require_redis(), timeout_seconds=2)
    key = f"test:{uuid.uuid4()}"
    try:
        assert (await shared.hit(key, 2, 60)).used == 1
        assert (await other.hit(key, 2, 60)).used == 2
        assert (await shared.hit(key, 2, 60)).admitted is False
    finally:
        await other.close()


async def test_a_restarted_redis_without_the_script_is_given_it_again(
    shared: RedisWindows,
) -> None:
    client = redis.asyncio.Redis.from_url(require_redis())
    try:
        await client.script_flush()
        assert (await shared.hit(f"test:{uuid.uuid4()}", 2, 60)).admitted
    finally:
        await client.aclose()


async def test_a_redis_that_does_not_answer_is_unavailable() -> None:
    down = RedisWindows("redis://127.0.0.1:1/0", timeout_seconds=0.5)
    try:
        with pytest.raises(StoreUnavailable):
            await down.hit("k", 1, 60)
        assert await down.reachable() is False
    finally:
        await down.close()

"""The memory store's moving windows: exact admission at every instant, when a full window
frees a request, forgetting idle consumers (Redis's: tests/integration/test_rate_limit_redis.py)."""

from __future__ import annotations

from archway.kernel.ratelimit.windows import SWEEP_EVERY_SECONDS, MemoryWindows, Window


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_moving_window_admits_the_limit_in_any_window_and_no_more() -> None:
    clock = Clock()
    windows = MemoryWindows(clock)
    assert await windows.hit("k", 3, 60) == Window(True, 1, 60.0)
    clock.now += 10
    assert await windows.hit("k", 3, 60) == Window(True, 2, 50.0)
    clock.now += 10
    assert await windows.hit("k", 3, 60) == Window(True, 3, 40.0)
    refused = await windows.hit("k", 3, 60)
    assert refused == Window(False, 3, 40.0)  # the first leaves in 40 s
    clock.now += 40  # exactly 60 s after the first: it has left, one is free
    assert await windows.hit("k", 3, 60) == Window(True, 3, 10.0)
    assert (await windows.hit("k", 3, 60)).admitted is False
    assert await windows.hit("other", 3, 60) == Window(True, 1, 60.0)  # keys count apart


async def test_idle_consumers_are_forgotten() -> None:
    clock = Clock()
    windows = MemoryWindows(clock)
    await windows.hit("idle", 5, 60)
    clock.now += 30
    await windows.hit("busy", 5, 60)
    clock.now += SWEEP_EVERY_SECONDS + 31  # idle's window is empty; busy's is not
    await windows.hit("busy", 5, 60)
    assert len(windows) == 1

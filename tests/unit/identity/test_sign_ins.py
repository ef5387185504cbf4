"""The sign-in throttle over a moving-window log on a clock the test turns: the delay doubles
from 1 s to its cap after the free failures, a success forgets them, an address has its own
bound, and the logs themselves (memory and Redis) keep what they promise."""

from __future__ import annotations

import uuid

import pytest

from archway.identity.sign_ins import RetryLater, SignInPolicy, SignInThrottle
from archway.kernel.ratelimit.windows import (
    MemoryWindows,
    Recent,
    RedisWindows,
    StoreUnavailable,
)
from tests.redis_server import require_redis

POLICY = SignInPolicy(failures_before_delay=3, window_seconds=900, max_delay_seconds=8,
                      failures_per_address=50)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> SignInThrottle:
    return SignInThrottle(MemoryWindows(clock=clock), POLICY)


async def test_the_delay_doubles_from_one_second_to_its_cap(
    throttle: SignInThrottle, clock: Clock
) -> None:
    waits = []
    for _ in range(10):
        wait = await throttle.wait("ada@example.com", "192.0.2.1")
        if wait is not None:
            waits.append(wait.seconds)
            clock.now += wait.seconds  # the hint is enough: after it the attempt is let in
            assert await throttle.wait("ada@example.com", "192.0.2.1") is None
        await throttle.failed("ada@example.com", "192.0.2.1")
    assert waits == [1, 2, 4, 8, 8, 8, 8]  # three free, then doubling, bounded by the cap
    # just short of the delay is still too early, and says how long is left
    await throttle.failed("ada@example.com", "192.0.2.1")
    clock.now += 7.5
    assert await throttle.wait("ada@example.com", "192.0.2.1") == RetryLater(1)


async def test_the_delay_never_exceeds_its_cap_however_many_failures(clock: Clock) -> None:
    throttle = SignInThrottle(MemoryWindows(clock=clock), POLICY)
    for _ in range(500):  # concurrent attempts that all passed the check, say
        await throttle.failed("ada@example.com", None)
    assert await throttle.wait("ada@example.com", None) == RetryLater(8)
    assert POLICY.delay(10**6) == 8


async def test_a_success_forgets_the_accounts_failures(
    throttle: SignInThrottle, clock: Clock
) -> None:
    for _ in range(4):
        await throttle.failed("Ada@Example.com ", "192.0.2.1")  # normalised like an email
    assert await throttle.wait("ada@example.com", "192.0.2.1") == RetryLater(2)
    clock.now += 2
    await throttle.succeeded("ada@example.com")
    assert await throttle.wait("ada@example.com", "192.0.2.1") is None
    await throttle.failed("ada@example.com", "192.0.2.1")
    assert await throttle.wait("ada@example.com", "192.0.2.1") is None  # counting from 1 again


async def test_failures_leave_with_the_window(throttle: SignInThrottle, clock: Clock) -> None:
    for _ in range(6):
        await throttle.failed("ada@example.com", None)
    assert await throttle.wait("ada@example.com", None) == RetryLater(8)
    clock.now += 900
    assert await throttle.wait("ada@example.com", None) is None


async def test_an_address_failing_across_many_emails_is_refused_until_its_oldest_leaves(
    throttle: SignInThrottle, clock: Clock
) -> None:
    for n in range(50):
        await throttle.failed(f"guess{n}@example.com", "192.0.2.9")
        clock.now += 1
    assert await throttle.wait("someone@example.com", "192.0.2.9") == RetryLater(850)
    assert await throttle.wait("someone@example.com", "192.0.2.10") is None  # not another's
    clock.now += 850
    assert await throttle.wait("someone@example.com", "192.0.2.9") is None


class DownLog:
    """A store that cannot answer (Redis down), every call; ``calls`` counts them."""

    def __init__(self) -> None:
        self.calls = 0

    def _down(self) -> StoreUnavailable:
        self.calls += 1
        return StoreUnavailable("ConnectionError: refused")

    async def record(self, key: str, keep: int, window_seconds: int) -> Recent:
        raise self._down()

    async def recent(self, key: str, window_seconds: int) -> Recent:
        raise self._down()

    async def forget(self, key: str) -> None:
        raise self._down()

    async def close(self) -> None:
        return None


async def test_a_store_that_cannot_answer_lets_sign_ins_through_and_rests_a_second(
    caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    down = DownLog()
    throttle = SignInThrottle(down, POLICY, clock=clock)
    with caplog.at_level("WARNING", logger="archway.identity.sign_ins"):
        assert await throttle.wait("ada@example.com", "192.0.2.1") is None
        await throttle.failed("ada@example.com", "192.0.2.1")  # within the second: not asked
        await throttle.succeeded("ada@example.com")
        assert down.calls == 1 and len(caplog.records) == 1
        assert "sign-ins are not throttled" in caplog.records[0].getMessage()
        clock.now += 1
        await throttle.failed("ada@example.com", "192.0.2.1")
        clock.now += 1
        await throttle.succeeded("ada@example.com")
    assert down.calls == 3
    assert [r.getMessage().split(" (")[0] for r in caplog.records[1:]] == [
        "the sign-in failures store cannot answer, so a failed sign-in is not counted",
        "the sign-in failures store cannot answer, so a signed-in account's failures are not "
        "forgotten"]


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_the_event_logs_record_trim_and_forget(store: str) -> None:
    log = (MemoryWindows() if store == "memory" else
           RedisWindows(require_redis(), timeout_seconds=1, prefix=f"test:{uuid.uuid4()}:"))
    try:
        empty = await log.recent("k", 60)
        assert empty.events == 0 and empty.since_newest == 60 and empty.oldest_leaves_in == 0
        for _ in range(5):
            recorded = await log.record("k", 3, 60)
        assert recorded.events == 3 and recorded.since_newest < 1  # trimmed to the newest 3
        assert 59 < recorded.oldest_leaves_in <= 60
        assert (await log.recent("k", 60)).events == 3
        assert (await log.recent("other", 60)).events == 0
        if isinstance(log, MemoryWindows):
            assert len(log) == 1  # reading a key never seen keeps nothing for it
        await log.forget("k")
        assert (await log.recent("k", 60)).events == 0
    finally:
        await log.close()

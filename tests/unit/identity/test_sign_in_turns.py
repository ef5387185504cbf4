"""Sign-in attempts for one email take turns (``SignInThrottle.attempt``): a burst of wrong
passwords sent at the same instant is checked only until the delay starts, as if sent one by
one, instead of every attempt passing the check before the first one has counted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from archway.identity.passwords import PasswordHasher
from archway.identity.service import IdentityService
from archway.identity.sign_ins import RetryLater, SignInPolicy, SignInThrottle
from archway.kernel.ratelimit.windows import MemoryWindows
from archway.topologies.monolith import Monolith
from tests.fakes import (
    FakeAuthorizationCodes,
    FakeClients,
    FakeRefreshTokens,
    FakeUnitsOfWork,
    FakeUsers,
)

POLICY = SignInPolicy(failures_before_delay=3, window_seconds=900, max_delay_seconds=60,
                      failures_per_address=1000)


class SlowHasher(PasswordHasher):
    """Real argon2, and a yield to the loop before each check, so a burst's attempts interleave
    the way concurrent requests do; counts the passwords it checked."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_kib=1024, workers=2, queue_timeout=5.0)
        self.checked = 0

    async def hash(self, password: str) -> str:
        await asyncio.sleep(0.01)
        self.checked += 1
        return await super().hash(password)

    async def verify(self, password_hash: str, password: str) -> bool:
        await asyncio.sleep(0.01)
        self.checked += 1
        return await super().verify(password_hash, password)


def service_with(graph: Monolith, hasher: PasswordHasher) -> IdentityService[Any]:
    return IdentityService(
        FakeUnitsOfWork(), hasher, graph.keys, graph.identity._issuer, users=FakeUsers,
        clients=FakeClients, refresh_tokens=FakeRefreshTokens, codes=FakeAuthorizationCodes,
        sign_ins=SignInThrottle(MemoryWindows(), POLICY))


async def test_a_burst_of_wrong_passwords_is_checked_only_until_the_delay_starts(
    graph: Monolith,
) -> None:
    hasher = SlowHasher()
    service = service_with(graph, hasher)
    await service.register("ada@example.com", "the right password", "Ada")
    hasher.checked = 0
    answers = await asyncio.gather(*(
        service.sign_in("ada@example.com", f"guess {n}", address=f"192.0.2.{n}")
        for n in range(12)))
    assert hasher.checked == POLICY.failures_before_delay  # not 12
    assert answers.count(None) == POLICY.failures_before_delay
    assert all(isinstance(a, RetryLater) for a in answers if a is not None)
    assert service.sign_ins.attempts_in_progress() == 0  # no lock is left behind
    hasher.close()


async def test_an_unknown_email_takes_turns_too_and_other_emails_do_not_wait(
    graph: Monolith,
) -> None:
    hasher = SlowHasher()
    service = service_with(graph, hasher)
    burst = [service.sign_in("nobody@example.com", f"guess {n}", address=None)
             for n in range(8)]
    other = service.sign_in("someone@example.com", "a guess", address=None)
    answers = await asyncio.gather(*burst, other)
    assert answers[:8].count(None) == POLICY.failures_before_delay
    assert answers[8] is None  # checked, and wrong: its own account was not throttled
    assert hasher.checked == POLICY.failures_before_delay + 1
    hasher.close()


async def test_a_failing_attempt_releases_its_turn() -> None:
    throttle = SignInThrottle(MemoryWindows(), POLICY)

    async def fails() -> None:
        async with throttle.attempt("ada@example.com"):
            raise RuntimeError("the password pool was busy")

    for _ in range(2):
        with pytest.raises(RuntimeError):
            await fails()
    async with asyncio.timeout(1):
        async with throttle.attempt("ada@example.com"):
            assert throttle.attempts_in_progress() == 1
    assert throttle.attempts_in_progress() == 0

"""Failed sign-ins, counted per account and per client address, and the growing delay they
earn (docs/security.md, API2): the login page's bound on guessing passwords.

An account (its email, normalised, whether or not it has a user: an unknown email is throttled
exactly like a known one) may fail ``failures_before_delay`` times within the window freely;
each failure after that must wait a delay that doubles from 1 s up to ``max_delay_seconds``
after the newest failure. An account is never locked: anyone may type a victim's email, so a
lockout would let anyone lock the victim out, and a bounded delay costs the victim seconds
while still slowing a guesser to one try per ``max_delay_seconds``. An address that fails
``failures_per_address`` times within the window (many accounts, one guesser) is refused until
the oldest of those leaves it. Refused attempts run no password hash and count nothing, so
waiting out a delay never makes it longer; a successful sign-in forgets its account's failures
(not its address's: one's own account must not reset a guesser's budget).

An account's attempts in one process take turns (:meth:`SignInThrottle.attempt`): its check,
its password and its count are one step, so attempts sent at the same instant cannot all pass
the check before the first of them has counted. (Across processes on one Redis, attempts that
reach different processes at the same instant can still overlap by one each.)

The logs are the rate limiter's moving-window stores (:class:`EventLog`): in memory, or on
Redis and so shared by every process. A store that cannot answer lets sign-ins through
unthrottled, logged: an outage of Redis must not stop customers from signing in. Like the
limiter, the throttle then leaves the store alone for a second, so an outage costs sign-ins no
connection attempts (nor the log a line each).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from archway.identity.domain import normalize_email
from archway.kernel.ratelimit.limiter import RETRY_STORE_AFTER_SECONDS
from archway.kernel.ratelimit.windows import EventLog, MemoryWindows, StoreUnavailable

_log = logging.getLogger("archway.identity.sign_ins")


@dataclass(frozen=True, slots=True)
class SignInPolicy:
    """The bounds (``ARCHWAY_LOGIN_*``, see :mod:`archway.config`)."""

    failures_before_delay: int = 5
    window_seconds: int = 900
    max_delay_seconds: int = 60
    failures_per_address: int = 100

    def delay(self, failures: int) -> float:
        """How long after its newest failure an account with ``failures`` waits: 0 below the
        threshold, then 1, 2, 4 … seconds, at most ``max_delay_seconds``."""
        if failures < self.failures_before_delay:
            return 0.0
        steps = failures - self.failures_before_delay
        return float(min(2 ** min(steps, 62), self.max_delay_seconds))

    @property
    def account_keep(self) -> int:
        """The failures an account's log keeps: enough to reach the longest delay."""
        return self.failures_before_delay + math.ceil(math.log2(self.max_delay_seconds)) + 1


@dataclass(frozen=True, slots=True)
class RetryLater:
    """A sign-in refused without checking the password: try again in ``seconds``."""

    seconds: int


class SignInThrottle:
    """Counts failed sign-ins and says when the next attempt may be made."""

    def __init__(self, log: EventLog, policy: SignInPolicy = SignInPolicy(), *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self.policy = policy
        self._clock = clock
        self._skip_store_until = float("-inf")
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}  # account: its lock, holders

    @classmethod
    def in_memory(cls, policy: SignInPolicy = SignInPolicy()) -> SignInThrottle:
        return cls(MemoryWindows(), policy)

    @asynccontextmanager
    async def attempt(self, email: str) -> AsyncIterator[None]:
        """The block is ``email``'s one attempt in progress in this process: others for the
        same account wait for it to end (its check, password and count), any other account's
        do not. The lock goes when no attempt holds or awaits it."""
        key = _account(email)
        lock, holders = self._turns.get(key) or (asyncio.Lock(), 0)
        self._turns[key] = (lock, holders + 1)
        try:
            async with lock:
                yield
        finally:
            lock, holders = self._turns[key]
            if holders == 1:
                del self._turns[key]
            else:
                self._turns[key] = (lock, holders - 1)

    def attempts_in_progress(self) -> int:
        """How many accounts have an attempt in progress or waiting."""
        return len(self._turns)

    async def wait(self, email: str, address: str | None) -> RetryLater | None:
        """Whether an attempt for ``email`` from ``address`` must wait, and how long."""
        policy = self.policy
        if self._store_resting():
            return None
        try:
            account = await self._log.recent(_account(email), policy.window_seconds)
            if address is not None:
                by_address = await self._log.recent(_address(address), policy.window_seconds)
                if by_address.events >= policy.failures_per_address:
                    return RetryLater(max(1, math.ceil(by_address.oldest_leaves_in)))
        except StoreUnavailable as exc:
            self._store_failed("sign-ins are not throttled", exc)
            return None
        left = policy.delay(account.events) - account.since_newest
        return RetryLater(max(1, math.ceil(left))) if left > 0 else None

    async def failed(self, email: str, address: str | None) -> None:
        policy = self.policy
        if self._store_resting():
            return
        try:
            await self._log.record(_account(email), policy.account_keep, policy.window_seconds)
            if address is not None:
                await self._log.record(
                    _address(address), policy.failures_per_address, policy.window_seconds)
        except StoreUnavailable as exc:
            self._store_failed("a failed sign-in is not counted", exc)

    async def succeeded(self, email: str) -> None:
        if self._store_resting():
            return
        try:
            await self._log.forget(_account(email))
        except StoreUnavailable as exc:
            self._store_failed("a signed-in account's failures are not forgotten", exc)

    def _store_resting(self) -> bool:
        return self._clock() < self._skip_store_until

    def _store_failed(self, consequence: str, exc: StoreUnavailable) -> None:
        self._skip_store_until = self._clock() + RETRY_STORE_AFTER_SECONDS
        _log.warning("the sign-in failures store cannot answer, so %s (nor for the next "
                     "%.0f s): %s", consequence, RETRY_STORE_AFTER_SECONDS, exc)

    async def close(self) -> None:
        await self._log.close()


def _account(email: str) -> str:
    """The account's key: a digest, so that the store holds no email address."""
    digest = hashlib.sha256(normalize_email(email).encode()).hexdigest()
    return f"account:{digest}"


def _address(address: str) -> str:
    return f"address:{address}"

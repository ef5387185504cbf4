"""The limiter: a moving window per consumer, route class and plan, kept by the ``limits``
library in memory (one process) or in Redis (shared by every process, exact across them: each
hit is one atomic Lua script there).

When its Redis cannot be reached (down, refusing, slower than the timeout), the limiter cannot
decide. It then *fails open* (the request proceeds unlimited, without rate-limit headers) or
*fails closed* (a 503 ``ServiceBusy`` with ``Retry-After``), as configured; either way it stops
asking Redis for a second after each failure, so an outage costs requests no connection
attempts, and ``/readyz`` says what it does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from redis.asyncio import BlockingConnectionPool

from archway.kernel.errors import ServiceBusy
from archway.kernel.observability.metrics import HttpMetrics
from archway.kernel.ratelimit.headers import limit_header, policy_header, seconds_until
from archway.kernel.ratelimit.policy import Plan, Plans, Policy, RouteClass

RETRY_STORE_AFTER_SECONDS = 1.0
"""After a failed call to the store, how long requests skip it (open or closed) before one
tries again."""

REDIS_POOL_SIZE = 64
"""Connections to Redis per process; a request waits for a free one up to the timeout."""

_log = logging.getLogger("archway.ratelimit")


@dataclass(frozen=True, slots=True)
class Decision:
    """One request's verdict under its policy, and the headers that say so."""

    policy: Policy
    allowed: bool
    remaining: int
    reset_seconds: int
    headers: tuple[tuple[bytes, bytes], ...]

    @property
    def retry_after(self) -> int:
        """``Retry-After`` of a refusal: when the window frees a request, at least 1 s."""
        return max(1, self.reset_seconds)


class RateLimiter:
    """Counts each request against its consumer's policy in a ``limits`` storage."""

    def __init__(
        self,
        plans: Plans,
        storage: Storage,
        *,
        shared: bool,
        fail_open: bool = True,
        metrics: HttpMetrics | None = None,
        close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.plans = plans
        self.shared = shared
        self.fail_open = fail_open
        self._storage = storage
        self._strategy = MovingWindowRateLimiter(storage)
        self._metrics = metrics
        self._close = close
        self._items: dict[tuple[Plan, RouteClass], tuple[Policy, RateLimitItem, bytes]] = {}
        for plan in Plan:
            for cls in RouteClass:
                policy = plans.policy(plan, cls)
                item = RateLimitItemPerSecond(
                    policy.quota.amount, policy.quota.window_seconds, namespace="archway")
                self._items[(plan, cls)] = (
                    policy, item, policy_header(policy).encode("ascii"))
        self._skip_store_until = 0.0
        self._last_failure: str | None = None

    @classmethod
    def in_memory(cls, plans: Plans, *, metrics: HttpMetrics | None = None) -> RateLimiter:
        """A limiter of this process alone (each process of a deployment counts apart)."""
        return cls(plans, MemoryStorage(), shared=False, metrics=metrics)

    @classmethod
    def on_redis(
        cls,
        plans: Plans,
        url: str,
        *,
        fail_open: bool,
        timeout_seconds: float,
        metrics: HttpMetrics | None = None,
    ) -> RateLimiter:
        """A limiter every process on the same Redis shares. Nothing connects until the
        first request; ``close`` releases the connections."""
        pool = BlockingConnectionPool.from_url(
            url, max_connections=REDIS_POOL_SIZE, timeout=timeout_seconds,
            socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds)
        storage = RedisStorage(
            "async+" + url, implementation="redispy", wrap_exceptions=True,
            # limits documents connection_pool but types its options as scalars only:
            connection_pool=pool)  # type: ignore[arg-type]
        return cls(plans, storage, shared=True, fail_open=fail_open, metrics=metrics,
                   close=pool.aclose)

    @property
    def storage_name(self) -> str:
        return "redis" if self.shared else "memory"

    async def hit(self, plan: Plan, cls: RouteClass, consumer: str) -> Decision | None:
        """Count one request of ``consumer`` (``sub:…``, ``ip:…``) under its policy.

        ``None`` when the store could not be asked and the limiter fails open; raises
        :class:`ServiceBusy` when it fails closed."""
        policy, item, policy_value = self._items[(plan, cls)]
        if time.monotonic() < self._skip_store_until:
            self._undecided(policy)
            return None
        try:
            allowed = await self._strategy.hit(item, cls, consumer)
            stats = await self._strategy.get_window_stats(item, cls, consumer)
        except (StorageError, OSError, TimeoutError) as exc:
            self._skip_store_until = time.monotonic() + RETRY_STORE_AFTER_SECONDS
            failure = f"{type(exc).__name__}: {getattr(exc, 'storage_error', exc)}"
            if failure != self._last_failure:
                _log.warning("the rate limit store failed (%s); failing %s", failure,
                             "open" if self.fail_open else "closed")
            self._last_failure = failure
            self._undecided(policy)
            return None
        self._last_failure = None
        window = policy.quota.window_seconds
        reset = seconds_until(stats.reset_time, time.time(), window)
        remaining = stats.remaining if allowed else 0
        if not allowed and self._metrics is not None:
            self._metrics.rate_limit_rejected(str(plan), str(cls), "over_limit")
        headers = ((b"ratelimit-policy", policy_value),
                   (b"ratelimit", limit_header(policy, remaining, reset).encode("ascii")))
        return Decision(policy, allowed, remaining, reset, headers)

    def _undecided(self, policy: Policy) -> None:
        """Fail open (return) or closed (raise) for a request the store could not decide."""
        if self._metrics is not None:
            self._metrics.rate_limit_store_failed()
        if self.fail_open:
            return
        if self._metrics is not None:
            self._metrics.rate_limit_rejected(
                str(policy.plan), str(policy.route_class), "store_unavailable")
        raise ServiceBusy("Rate limits cannot be checked right now; retry shortly.")

    async def reachable(self) -> bool:
        """Whether the store answers now (memory always does)."""
        return await self._storage.check()

    async def readiness(self) -> Mapping[str, object]:
        """What ``/readyz`` says of the limiter: its store, whether it answers, and what the
        limiter does when it does not."""
        reachable = await self.reachable()
        return {
            "status": "ok" if reachable else "degraded",
            "storage": self.storage_name,
            "store": "reachable" if reachable else "unreachable",
            "on_store_failure": "fail-open" if self.fail_open else "fail-closed",
        }

    async def close(self) -> None:
        if self._close is not None:
            await self._close()

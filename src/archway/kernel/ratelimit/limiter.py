"""The limiter: a moving window (:mod:`.windows`) per consumer, route class and plan, kept in
memory (one process) or in Redis (shared by every process, exact across them: each hit is one
atomic script there).

When its Redis cannot be reached (down, refusing, slower than the timeout), the limiter cannot
decide. It then *fails open* (the request proceeds unlimited, without rate-limit headers) or
*fails closed* (a 503 ``ServiceBusy`` with ``Retry-After``), as configured; either way it stops
asking Redis for a second after each failure, so an outage costs requests no connection
attempts, and ``/readyz`` says what it does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import NamedTuple

from archway.kernel.auth.callers import Caller
from archway.kernel.errors import RateLimited, ServiceBusy
from archway.kernel.observability.metrics import HttpMetrics
from archway.kernel.ratelimit.headers import limit_header_prefix, policy_header, seconds_until
from archway.kernel.ratelimit.policy import Plan, Plans, Policy, RouteClass
from archway.kernel.ratelimit.windows import (
    MemoryWindows,
    RedisWindows,
    StoreUnavailable,
    WindowStore,
)

RETRY_STORE_AFTER_SECONDS = 1.0
"""After a failed call to the store, how long requests skip it (open or closed) before one
tries again."""

_log = logging.getLogger("archway.ratelimit")


class Decision(NamedTuple):
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

    def refusal(self) -> RateLimited:
        """The error a refused call is answered with, in every protocol's form (429 problem,
        ``RESOURCE_EXHAUSTED``, GraphQL's ``RATE_LIMITED``), ``RateLimit*`` values included."""
        quota = self.policy.quota
        return RateLimited(
            f"Over the {self.policy.name} quota of {quota.amount} requests per "
            f"{quota.window_seconds} s; retry in {self.retry_after} s.",
            retry_after=self.retry_after,
            limits=tuple((name.decode(), value.decode()) for name, value in self.headers))


class RateLimiter:
    """Counts each request against its consumer's policy in a window store."""

    def __init__(
        self,
        plans: Plans,
        store: WindowStore,
        *,
        shared: bool,
        fail_open: bool = True,
        metrics: HttpMetrics | None = None,
    ) -> None:
        self.plans = plans
        self.shared = shared
        self.fail_open = fail_open
        self._store = store
        self._metrics = metrics
        self._policies: dict[tuple[Plan, RouteClass], tuple[Policy, str, bytes, bytes]] = {}
        for plan in Plan:
            for cls in RouteClass:
                policy = plans.policy(plan, cls)
                quota = policy.quota
                # The quota is in the key: a changed quota starts a window of its own.
                prefix = f"{cls}:{quota.amount}/{quota.window_seconds}:"
                self._policies[(plan, cls)] = (
                    policy, prefix, policy_header(policy).encode("ascii"),
                    limit_header_prefix(policy).encode("ascii"))
        self._skip_store_until = 0.0
        self._last_failure: str | None = None

    @classmethod
    def in_memory(cls, plans: Plans, *, metrics: HttpMetrics | None = None) -> RateLimiter:
        """A limiter of this process alone (each process of a deployment counts apart)."""
        return cls(plans, MemoryWindows(), shared=False, metrics=metrics)

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
        return cls(plans, RedisWindows(url, timeout_seconds=timeout_seconds), shared=True,
                   fail_open=fail_open, metrics=metrics)

    @property
    def storage_name(self) -> str:
        return "redis" if self.shared else "memory"

    async def admit(
        self, caller: Caller, cls: RouteClass, *, protocol: str = "http"
    ) -> Decision | None:
        """Count one call of ``caller`` under its plan's policy for ``cls`` (as :meth:`hit`):
        the one rule every protocol's edge applies."""
        plan = self.plans.plan_of(
            caller.subject if caller.kind != "address" else None, caller.client_id,
            key_plan=caller.plan)
        return await self.hit(plan, cls, caller.key, protocol=protocol)

    async def hit(
        self, plan: Plan, cls: RouteClass, consumer: str, *, protocol: str = "http"
    ) -> Decision | None:
        """Count one request of ``consumer`` (``sub:…``, ``ip:…``) under its policy;
        ``protocol`` labels its refusals' count.

        ``None`` when the store could not be asked and the limiter fails open; raises
        :class:`ServiceBusy` when it fails closed."""
        policy, prefix, policy_value, limit_prefix = self._policies[(plan, cls)]
        if time.monotonic() < self._skip_store_until:
            self._undecided(policy, protocol)
            return None
        quota = policy.quota
        try:
            window = await self._store.hit(prefix + consumer, quota.amount, quota.window_seconds)
        except StoreUnavailable as exc:
            self._skip_store_until = time.monotonic() + RETRY_STORE_AFTER_SECONDS
            if str(exc) != self._last_failure:
                _log.warning("the rate limit store failed (%s); failing %s", exc,
                             "open" if self.fail_open else "closed")
            self._last_failure = str(exc)
            self._undecided(policy, protocol)
            return None
        self._last_failure = None
        reset = seconds_until(window.frees_in, 0.0, quota.window_seconds)
        remaining = max(0, quota.amount - window.used)
        if not window.admitted and self._metrics is not None:
            self._metrics.rate_limit_rejected(str(plan), str(cls), "over_limit", protocol)
        headers = ((b"ratelimit-policy", policy_value),
                   (b"ratelimit", limit_prefix + b"r=%d;t=%d" % (remaining, reset)))
        return Decision(policy, window.admitted, remaining, reset, headers)

    def _undecided(self, policy: Policy, protocol: str) -> None:
        """Fail open (return) or closed (raise) for a request the store could not decide."""
        if self._metrics is not None:
            self._metrics.rate_limit_store_failed()
        if self.fail_open:
            return
        if self._metrics is not None:
            self._metrics.rate_limit_rejected(
                str(policy.plan), str(policy.route_class), "store_unavailable", protocol)
        raise ServiceBusy("Rate limits cannot be checked right now; retry shortly.")

    async def reachable(self) -> bool:
        """Whether the store answers now (memory always does)."""
        return await self._store.reachable()

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
        await self._store.close()

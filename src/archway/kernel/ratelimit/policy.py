"""What a request is limited by: its consumer's plan and its route class, each with a quota.

Three plans: ``anonymous`` (no valid token: keyed by the client's address), ``default`` (a valid
token: keyed by its subject) and ``partner`` (a token whose client id or subject is listed as a
partner's). An API key names its own plan (``default`` or ``partner``) and is keyed by its id.
Three route classes: ``reads`` (safe methods), ``writes`` (every other method) and
``auth`` (registering, logging in, getting a token: the costly and abusable calls, much
stricter). Every plan has a quota for each class; the composition root reads them from its
settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Plan(StrEnum):
    ANONYMOUS = "anonymous"
    DEFAULT = "default"
    PARTNER = "partner"


class RouteClass(StrEnum):
    READS = "reads"
    WRITES = "writes"
    AUTH = "auth"


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

AUTH_PATHS = re.compile(r"^(?:/api/v\d+/users|/oauth/token|/oauth/authorize|/login)$")
"""Where credentials are made or checked: registering (``POST /api/v{n}/users``), OAuth's token
and authorization endpoints and a login form. Only their writes are of the ``auth`` class (a
login page's ``GET`` is a read)."""


def route_class(method: str, path: str, auth_paths: re.Pattern[str] = AUTH_PATHS) -> RouteClass:
    """The class of a request, from its method and its routed (versioned) path."""
    if method in SAFE_METHODS:
        return RouteClass.READS
    return RouteClass.AUTH if auth_paths.match(path) else RouteClass.WRITES


@dataclass(frozen=True, slots=True)
class Quota:
    """``amount`` requests in any ``window_seconds`` (a moving window)."""

    amount: int
    window_seconds: int

    def __post_init__(self) -> None:
        if self.amount < 1 or self.window_seconds < 1:
            raise ValueError("a quota needs at least one request in a window of at least 1 s")


@dataclass(frozen=True, slots=True)
class Policy:
    """One plan's quota for one route class, named as the ``RateLimit`` headers name it: the
    plan alone for reads (``"default"``, the common case), plan and class otherwise
    (``"default-writes"``, ``"anonymous-auth"``)."""

    plan: Plan
    route_class: RouteClass
    quota: Quota

    @property
    def name(self) -> str:
        if self.route_class is RouteClass.READS:
            return str(self.plan)
        return f"{self.plan}-{self.route_class}"


class Plans:
    """Every plan × route class policy, and which plan a consumer is on."""

    def __init__(
        self,
        quotas: Mapping[Plan, Mapping[RouteClass, Quota]],
        *,
        partners: frozenset[str] = frozenset(),
    ) -> None:
        missing = [f"{plan}/{cls}" for plan in Plan for cls in RouteClass
                   if cls not in quotas.get(plan, {})]
        if missing:
            raise ValueError(f"no quota for {', '.join(missing)}")
        self._policies = {(plan, cls): Policy(plan, cls, quotas[plan][cls])
                          for plan in Plan for cls in RouteClass}
        self._partners = partners

    def policy(self, plan: Plan, cls: RouteClass) -> Policy:
        return self._policies[(plan, cls)]

    def plan_of(
        self, subject: str | None, client_id: str | None, *, key_plan: str | None = None
    ) -> Plan:
        """``anonymous`` without a token's subject; an API key's own plan (``key_plan``);
        ``partner`` when the token's client id or subject is a listed partner's; ``default``
        otherwise."""
        if subject is None:
            return Plan.ANONYMOUS
        if key_plan is not None:
            return Plan(key_plan)
        if subject in self._partners or (client_id is not None and client_id in self._partners):
            return Plan.PARTNER
        return Plan.DEFAULT

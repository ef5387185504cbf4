"""The API-key seam: what a process that accepts ``X-API-Key`` asks of whoever holds the keys.

The kernel knows no context: identity verifies a key (its digest, cached briefly) and answers
with a :class:`KeyHolder`, the principal the key acts as and the rate-limit plan it is on. The
guard (:mod:`archway.kernel.http.guard`) and the caller identifier (``kernel.http.caller``)
take such a verifier as a function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from archway.kernel.auth.principal import Principal

API_KEY_HEADER = "x-api-key"
"""Where a key is sent (``X-API-Key``); an ``Authorization`` header, when also sent, wins."""


@dataclass(frozen=True, slots=True)
class KeyHolder:
    principal: Principal  # subject ``key:<id>``, the key's scopes, no role
    plan: str  # a ``kernel.ratelimit.Plan`` value other than ``anonymous``


ApiKeyVerifier = Callable[[str], Awaitable[KeyHolder | None]]
"""A key's holder, ``None`` for a key that is unknown or revoked."""

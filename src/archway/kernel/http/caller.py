"""Who sent a request, as the edge policies (idempotency, rate limits) key it.

A valid bearer token makes the caller its subject (and the client it was issued to); without one
(or with one that does not verify: the route will refuse it, and its address is what is left to
key by) the caller is the client's address. Each request is identified once: the answer is kept
in its scope, and the verifier caches verified tokens, so the second policy to ask pays nothing.

API keys would be a third source, checked before the address: a ``Caller`` of kind ``api-key``
whose ``subject`` is the key's owner (:meth:`Caller.key` would then be ``key:<id>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.types import Scope

from archway.kernel.auth.tokens import TokenVerifier, bearer_token
from archway.kernel.errors import ArchwayError

CALLER_KEY = "archway.caller"


@dataclass(frozen=True, slots=True)
class Caller:
    kind: Literal["token", "address"]
    subject: str  # the token's subject, or the client's address
    client_id: str | None = None

    @property
    def key(self) -> str:
        """``sub:<subject>`` or ``ip:<address>``: what idempotency keys and rate limits
        belong to."""
        return ("sub:" if self.kind == "token" else "ip:") + self.subject


class CallerIdentifier:
    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def __call__(self, scope: Scope) -> Caller:
        known: Caller | None = scope.get(CALLER_KEY)
        if known is not None:
            return known
        caller = await self._identify(scope)
        scope[CALLER_KEY] = caller
        return caller

    async def _identify(self, scope: Scope) -> Caller:
        authorization = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
        try:
            token = bearer_token(authorization)
            if token is not None:
                principal = await self._verifier.verify(token)
                return Caller("token", principal.subject, principal.client_id)
        except ArchwayError:
            pass  # an invalid token identifies nobody: the caller is its address
        client = scope.get("client")
        return Caller("address", client[0] if client else "unknown")

"""Who sent a request, as the edge policies (idempotency, rate limits) key it.

A valid bearer token makes the caller its subject (and the client it was issued to); without one
(or with one that does not verify: the route will refuse it, and its address is what is left to
key by) the caller is the client's address. Each request is identified once: the answer is kept
in its scope, and the verifier caches verified tokens, so the second policy to ask pays nothing.

An API key (``X-API-Key``, without an ``Authorization`` header: that one wins) is a third
source, checked before the address: a ``Caller`` of kind ``api-key`` whose ``subject`` is
``key:<id>`` (also its :attr:`Caller.key`) and whose ``plan`` is the key's. A key that does not
verify identifies nobody, like a bad token: the route refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from starlette.types import Scope

from archway.kernel.auth.api_keys import API_KEY_HEADER, ApiKeyVerifier
from archway.kernel.auth.tokens import TokenVerifier, bearer_token
from archway.kernel.errors import ArchwayError

CALLER_KEY = "archway.caller"


@dataclass(frozen=True, slots=True)
class Caller:
    kind: Literal["token", "api-key", "address"]
    subject: str  # the token's subject, ``key:<id>``, or the client's address
    client_id: str | None = None
    plan: str | None = None  # an API key's plan

    @property
    def key(self) -> str:
        """``sub:<subject>``, ``key:<id>`` or ``ip:<address>``: what idempotency keys and rate
        limits belong to."""
        if self.kind == "api-key":
            return self.subject
        return ("sub:" if self.kind == "token" else "ip:") + self.subject


class CallerIdentifier:
    def __init__(self, verifier: TokenVerifier, api_keys: ApiKeyVerifier | None = None) -> None:
        self._verifier = verifier
        self._api_keys = api_keys

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
        if authorization is None and self._api_keys is not None:
            key = next((v.decode("latin-1") for k, v in scope["headers"]
                        if k == API_KEY_HEADER.encode()), None)
            holder = await self._api_keys(key) if key is not None else None
            if holder is not None:
                return Caller("api-key", holder.principal.subject, plan=holder.plan)
        client = scope.get("client")
        return Caller("address", client[0] if client else "unknown")

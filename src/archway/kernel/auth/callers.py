"""Who sent a call, as the edge policies (idempotency, rate limits) key it, whatever its protocol.

A valid bearer token makes the caller its subject (and the client it was issued to); without one
(or with one that does not verify: the call will be refused, and its address is what is left to
key by) the caller is the client's address. The verifier caches verified tokens, so asking here
and again in the route's guard costs one verification.

An API key (``X-API-Key``, without an ``Authorization``: that one wins) is a third source,
checked before the address: a ``Caller`` of kind ``api-key`` whose ``subject`` is ``key:<id>``
(also its :attr:`Caller.key`) and whose ``plan`` is the key's. A key that does not verify
identifies nobody, like a bad token.

Each protocol reads its own carriers (HTTP's headers and scope, gRPC's metadata and peer) and
asks :meth:`Callers.identify`; ``kernel.http.caller`` and ``kernel.grpc.limits`` do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from archway.kernel.auth.api_keys import ApiKeyVerifier
from archway.kernel.auth.tokens import TokenVerifier, bearer_token
from archway.kernel.errors import ArchwayError


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


class Callers:
    def __init__(self, verifier: TokenVerifier, api_keys: ApiKeyVerifier | None = None) -> None:
        self._verifier = verifier
        self._api_keys = api_keys

    async def identify(
        self, authorization: str | None, api_key: str | None, address: str
    ) -> Caller:
        """The caller of a call with this ``Authorization`` value, ``X-API-Key`` value and
        client address (already resolved behind trusted proxies: ``kernel.proxies``)."""
        try:
            token = bearer_token(authorization)
            if token is not None:
                principal = await self._verifier.verify(token)
                return Caller("token", principal.subject, principal.client_id)
        except ArchwayError:
            pass  # an invalid token identifies nobody: the caller is its address
        if authorization is None and api_key is not None and self._api_keys is not None:
            holder = await self._api_keys(api_key)
            if holder is not None:
                return Caller("api-key", holder.principal.subject, plan=holder.plan)
        return Caller("address", address)

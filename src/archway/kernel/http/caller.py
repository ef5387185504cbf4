"""Who sent an HTTP request (:mod:`archway.kernel.auth.callers`), read from its scope.

Each request is identified once: the answer is kept in its scope, so the second policy to ask
(idempotency after the rate limits, GraphQL's own count) pays nothing. The address is the
scope's ``client``, which :class:`archway.kernel.http.proxies.ForwardedClients` has already
replaced with the forwarded one when the peer is a trusted proxy.
"""

from __future__ import annotations

from starlette.types import Scope

from archway.kernel.auth.api_keys import API_KEY_HEADER, ApiKeyVerifier
from archway.kernel.auth.callers import Caller, Callers
from archway.kernel.auth.tokens import TokenVerifier

CALLER_KEY = "archway.caller"
_API_KEY = API_KEY_HEADER.encode()

__all__ = ["CALLER_KEY", "Caller", "CallerIdentifier"]


class CallerIdentifier:
    def __init__(self, verifier: TokenVerifier, api_keys: ApiKeyVerifier | None = None) -> None:
        self.callers = Callers(verifier, api_keys)

    async def __call__(self, scope: Scope, *, authorization: str | None = None) -> Caller:
        """The request's caller; ``authorization``: a token sent elsewhere than in the headers
        (a websocket's ``connection_init``), which then identifies the caller afresh."""
        known: Caller | None = scope.get(CALLER_KEY)
        if known is not None and authorization is None:
            return known
        header = authorization
        api_key = None
        for name, value in scope["headers"]:
            if name == b"authorization" and header is None:
                header = value.decode("latin-1")
            elif name == _API_KEY and api_key is None:
                api_key = value.decode("latin-1")
        client = scope.get("client")
        caller = await self.callers.identify(header, api_key, client[0] if client else "unknown")
        if authorization is None:
            scope[CALLER_KEY] = caller
        return caller

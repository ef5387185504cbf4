"""Behind trusted proxies, a request's ``client`` is the forwarded one (``kernel.proxies``).

The outermost middleware when ``ARCHWAY_TRUSTED_PROXIES`` is set (absent otherwise): everything
inside it, the rate limits, idempotency's owner and the access log, sees the address the
trusted proxy saw, as a server's own proxy-headers option would set it. Only the address is
taken; the scheme stays the connection's.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from archway.kernel.proxies import TrustedProxies


class ForwardedClients:
    def __init__(self, app: ASGIApp, *, proxies: TrustedProxies) -> None:
        self.app = app
        self._proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and self._proxies.trusts(client[0]):
            forwarded_for = [v.decode("latin-1") for k, v in scope["headers"]
                             if k == b"x-forwarded-for"]
            forwarded = [v.decode("latin-1") for k, v in scope["headers"] if k == b"forwarded"]
            address = self._proxies.client_address(client[0], forwarded_for, forwarded)
            if address != client[0]:
                scope = {**scope, "client": (address, 0)}
        await self.app(scope, receive, send)

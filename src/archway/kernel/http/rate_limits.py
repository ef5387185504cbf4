"""Rate limits on every request, as one raw ASGI middleware (see :mod:`archway.kernel.ratelimit`).

It sits inside the HTTP policies (so a refusal has its request id, version and security headers,
and is counted and logged like any answer) and CORS (so a browser can read a 429), and outside
everything that does work for a request: body limits, idempotency, the fast lane and FastAPI.
A request is counted before any of them runs, and every answer it gets carries
``RateLimit-Policy`` and ``RateLimit``. Past the limit it is answered 429 problem+json with
``Retry-After``, through the one problem mapping (:class:`~archway.kernel.errors.RateLimited`).

The operations routes (``/healthz``, ``/readyz``, ``/metrics``) are not limited: a probe or a
scrape refused for its rate would take a healthy process out of service. ``/graphql`` is
counted by GraphQL itself, once per operation (a query is a read, a mutation a write), with
the same limiter and caller, and refused as a GraphQL error (``RATE_LIMITED``). A route that
counts its own requests (``counted_by_route``: OAuth's token endpoint, which keys each request
by the client it authenticated, a thing only the route learns) is passed through uncounted,
its caller identified (``scope[CALLER_KEY]``) for the route to fall back on.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archway.kernel.errors import ArchwayError
from archway.kernel.http.caller import CallerIdentifier
from archway.kernel.http.problems import error_response
from archway.kernel.ratelimit.limiter import RateLimiter
from archway.kernel.ratelimit.policy import route_class

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
COUNTED_ELSEWHERE = frozenset({"/graphql"})
"""Paths whose protocol counts its own calls: GraphQL counts each operation by its type
(:mod:`archway.kernel.graphql.rate_limits`), which a POST's method does not tell."""


class RateLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        identify: CallerIdentifier,
        unlimited: Collection[str] = UNLIMITED_PATHS | COUNTED_ELSEWHERE,
        counted_by_route: Collection[tuple[str, str]] = (),
    ) -> None:
        self.app = app
        self._limiter = limiter
        self._identify = identify
        self._unlimited = frozenset(unlimited)
        self._counted_by_route = frozenset(counted_by_route)  # (method, path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._unlimited:
            await self.app(scope, receive, send)
            return
        if (scope["method"], scope["path"]) in self._counted_by_route:
            await self._identify(scope)  # kept in the scope (CALLER_KEY), for the route
            await self.app(scope, receive, send)
            return
        caller = await self._identify(scope)
        try:
            decision = await self._limiter.admit(
                caller, route_class(scope["method"], scope["path"]))
        except ArchwayError as exc:  # failing closed: the store could not decide
            await error_response(scope, exc)(scope, receive, send)
            return
        if decision is None:  # failing open: no count, so no headers to tell one
            await self.app(scope, receive, send)
            return
        headers = decision.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(headers)
            await send(message)

        if not decision.allowed:
            await error_response(scope, decision.refusal())(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

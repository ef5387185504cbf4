"""A fast lane for the hottest routes: the common request, without FastAPI's machinery.

On one core, FastAPI's per-request work (routing, its exception and exit-stack middlewares,
solving each parameter and dependency) was about half of what a cached product page or a user's
own profile cost. A context may therefore give a few of its routes a *fast handler* next to
the FastAPI route: it reads the path and query itself and calls the same code the route calls.

The rule that keeps the two from drifting, for every method: **a fast handler declines only
before it has done any work.** For anything but the plain case (a parameter it does not know or
that is not in its simplest form, a missing or bad token, a command's header or body that is not
the plain case) it answers ``None`` before calling the code it shares with the route, and the
request goes through FastAPI as if the lane did not exist (a command's body is buffered, so the
route still gets it), so every refusal of a parameter has exactly one source. Once the handler
calls the shared code it answers, and the request never runs again through FastAPI, so nothing
runs twice and no fault hides as lost speed: an Archway error becomes the problem document
FastAPI's handler makes of it (:func:`~archway.kernel.http.problems.error_response`), and any
other exception goes up exactly as it would from the route, to the HTTP policies, which log it
at error level with its traceback and answer a 500 problem with the request id. The lane sits
inside every HTTP policy (ids, versions, headers, metrics, logs) and labels the request with the
FastAPI route it stands for before the handler runs, so metrics and logs cannot tell the
difference; tests compare the two paths' answers header by header (``ARCHWAY_FAST_LANE=false``
turns the lane off).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from archway.kernel.errors import ArchwayError
from archway.kernel.http.bodies import body_once, read_body
from archway.kernel.http.problems import error_response

FastHandler = Callable[[Request, dict[str, str]], Awaitable[Response | None]]
"""Answers the plain case of a route from the request and its path parameters, else ``None``."""

_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class FastRoute:
    """A fast handler for the FastAPI route declared with the same ``path`` template and
    ``method`` (``GET``, or ``POST`` under the rule for commands, see the module)."""

    path: str
    handler: FastHandler
    method: str = "GET"


class FastLane:
    """ASGI middleware: a request that matches a fast route goes to its fast handler first."""

    def __init__(
        self, app: ASGIApp, *, routes: Sequence[FastRoute], declared: Sequence[BaseRoute]
    ) -> None:
        self.app = app
        by_path = {(getattr(route, "path", None), method): route for route in declared
                   for method in getattr(route, "methods", None) or ()}
        self._exact: dict[tuple[str, str], tuple[FastRoute, BaseRoute]] = {}
        self._patterns: list[tuple[str, re.Pattern[str], FastRoute, BaseRoute]] = []
        for fast in routes:
            route = by_path.get((fast.path, fast.method))
            if route is None:
                raise ValueError(f"no route is declared for the fast route {fast.method} "
                                 f"{fast.path}")
            if "{" in fast.path:  # "/a/{b}" splits into "/a/", "b", "": text, name, text…
                parts = _PARAMETER.split(fast.path)
                pattern = "".join(f"(?P<{part}>[^/]+)" if index % 2 else re.escape(part)
                                  for index, part in enumerate(parts))
                self._patterns.append((fast.method, re.compile(f"^{pattern}$"), fast, route))
            else:
                self._exact[(fast.path, fast.method)] = (fast, route)
        self._methods = {fast.method for fast in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in self._methods:
            found = self._match(scope["path"], scope["method"])
            if found is not None:
                fast, route, params = found
                handler_receive = receive
                if scope["method"] != "GET":  # read once: the route's own copy if declined
                    body = await read_body(receive)
                    handler_receive, receive = body_once(body), body_once(body)
                scope["route"] = route  # what metrics and logs name it by, even if it fails
                response = await self._answer(fast, scope, handler_receive, params)
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _match(self, path: str, method: str) -> tuple[FastRoute, BaseRoute, dict[str, str]] | None:
        exact = self._exact.get((path, method))
        if exact is not None:
            return exact[0], exact[1], {}
        for route_method, pattern, fast, route in self._patterns:
            matched = pattern.match(path) if route_method == method else None
            if matched is not None:
                return fast, route, matched.groupdict()
        return None

    @staticmethod
    async def _answer(
        fast: FastRoute, scope: Scope, receive: Receive, params: dict[str, str]
    ) -> Response | None:
        try:
            return await fast.handler(Request(scope, receive), params)
        except ArchwayError as exc:  # a refusal, answered as the route's exception handler does
            return error_response(scope, exc)
        # Any other exception goes up as from the route: never through FastAPI a second time.


def plain_query(request: Request, allowed: Collection[str]) -> dict[str, str] | None:
    """The query as a dict if it only has ``allowed`` names, each at most once, with nothing
    escaped; else ``None`` (the request is not the plain case)."""
    raw = request.scope.get("query_string", b"")
    if not raw:
        return {}
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return None
    pairs = parse_qsl(text, keep_blank_values=True)
    query = dict(pairs)
    if len(query) != len(pairs) or not query.keys() <= set(allowed):
        return None
    return query


def plain_int(text: str | None, default: int, low: int, high: int) -> int | None:
    """``text`` as an int in ``[low, high]`` written plainly (digits only), ``default`` when
    absent; ``None`` otherwise."""
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        return None
    value = int(text)
    return value if low <= value <= high else None

"""A fast lane for the hottest GET routes: the common request, without FastAPI's machinery.

On one core, FastAPI's per-request work (routing, its exception and exit-stack middlewares,
solving each parameter and dependency) was about half of what a cached product page or a user's
own profile cost. A context may therefore give a few of its GET routes a *fast handler* next to
the FastAPI route: it reads the path and query itself and calls the same code the route calls.

The rule that keeps the two from drifting: **a fast handler only ever answers the plain,
successful case.** For anything else (a parameter it does not know or that is not in its
simplest form, a missing or bad token, an error of any kind) it answers ``None`` and the
request goes through FastAPI as if the lane did not exist, so every refusal, problem document
and validation message has exactly one source. GET handlers change nothing, so a request that
falls through after trying costs time, never correctness. The lane sits inside every HTTP
policy (ids, versions, headers, metrics, logs), and it labels the request with the FastAPI
route it stands for, so metrics and logs cannot tell the difference; tests compare the two
paths' answers header by header (``ARCHWAY_FAST_LANE=false`` turns the lane off).

A command (``POST``) may have a fast handler too, under a stricter rule, since running it twice
could change things twice: it may answer ``None`` only *before* it has changed anything (a
token, body or header that is not the plain case), and the request then reaches FastAPI with
its body intact. Once it runs the command it answers: an Archway error becomes the same problem
document FastAPI's handler makes of it (:func:`~archway.kernel.http.problems.error_response`),
and any other exception goes up as it would from the route.
"""

from __future__ import annotations

import logging
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

_log = logging.getLogger("archway.http")
_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class FastRoute:
    """A fast handler for the FastAPI route declared with the same ``path`` template and
    ``method`` (``GET``, or ``POST`` under the rule for commands, see the module)."""

    path: str
    handler: FastHandler
    method: str = "GET"


class FastLane:
    """ASGI middleware: a matching GET goes to its fast handler first."""

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
                if scope["method"] == "GET":
                    response = await self._try(fast, scope, receive, params)
                else:
                    body = await read_body(receive)
                    response = await self._command(fast, scope, body_once(body), params)
                    receive = body_once(body)  # the route's own copy, if the handler declined
                if response is not None:
                    scope["route"] = route  # what metrics and logs name the request by
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
    async def _command(
        fast: FastRoute, scope: Scope, receive: Receive, params: dict[str, str]
    ) -> Response | None:
        try:
            return await fast.handler(Request(scope, receive), params)
        except ArchwayError as exc:
            return error_response(scope, exc)

    @staticmethod
    async def _try(
        fast: FastRoute, scope: Scope, receive: Receive, params: dict[str, str]
    ) -> Response | None:
        try:
            return await fast.handler(Request(scope, receive), params)
        except Exception:  # noqa: BLE001 - FastAPI answers it, with the one error mapping
            _log.debug("fast route %s fell through on an error", fast.path, exc_info=True)
            return None


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

"""HTTP methods as RFC 9110 has them: HEAD wherever GET is, and a 405 that lists them all.

* **HEAD** (RFC 9110 §9.3.2) is answered by running the request as a GET and sending the
  GET's status and headers without its body. Doing it once, in front of everything, serves
  HEAD on every GET route (API, fast lane, docs, OpenAPI, operations) with the same headers,
  and the OpenAPI documents stay free of a HEAD twin of each operation.
* **405** answers carry ``Allow`` with every method of the path (§15.5.6): the router stops at
  the first route whose path matches, but one path is often served by several routes
  (``GET`` and ``PATCH`` of ``/products/{id}`` are two), so the methods of all of them are
  gathered. This runs only when a 405 is answered.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Match
from starlette.types import Message, Scope, Send


def head_as_get(scope: Scope, send: Send) -> tuple[Scope, Send]:
    """The scope of a HEAD request as a GET, and a ``send`` that drops the body.

    The scope is a copy, so the server still sees HEAD in its own (uvicorn reads it to expect
    no body), while every layer inside sees a GET.
    """
    scope = {**scope, "method": "GET"}

    async def headers_only(message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            if message.get("body"):
                message = {**message, "body": b""}
        elif kind != "http.response.start":  # a file sent by the server (pathsend): no body
            message = {"type": "http.response.body", "body": b""}
        await send(message)

    return scope, headers_only


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> str:
    """The ``Allow`` value for the request's path: every method of every route matching it,
    HEAD wherever GET is (served by :func:`head_as_get`), sorted."""
    methods: set[str] = set()
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))

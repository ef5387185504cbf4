"""The HTTP service defaults every HTTP process applies, as one raw ASGI middleware.

One pass per request does request ids, trace context, version resolution and headers
(``API-Version``, v1 ``Deprecation``/``Sunset``/``Link``), security headers, HEAD (see
:mod:`.methods`), metrics and the access log, and turns an unexpected exception (or an app that
returned without answering) into a bare 500 problem. Metrics and the access log record the
status the server was given, so they match what the client got. It is plain ASGI rather
than ``BaseHTTPMiddleware`` because it runs on every request and must stay cheap.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archway.kernel.errors import ArchwayError
from archway.kernel.http.methods import head_as_get
from archway.kernel.http.problems import REQUEST_ID_KEY, error_response, problem_response
from archway.kernel.http.security_headers import ALWAYS, API_CSP, HSTS
from archway.kernel.http.uri import path_reference, uri_reference
from archway.kernel.http.versioning import ApiVersion, resolve, successor_path
from archway.kernel.observability.logging import (
    bind_request_context,
    log_access,
    new_span_id,
    parse_traceparent,
    request_id_from,
    reset_request_context,
)
from archway.kernel.observability.metrics import HttpMetrics

VERSION_KEY = "archway.api_version"
_logger = logging.getLogger("archway.http")

@dataclass(frozen=True, slots=True)
class DeprecationPolicy:
    """RFC 9745 ``Deprecation`` (a Unix time) and RFC 8594 ``Sunset`` (an HTTP date) for v1."""

    deprecated_at: int
    sunset: str


class HttpPolicies:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics,
        deprecation: DeprecationPolicy,
        access_log: bool = True,
        hsts: bool = False,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.deprecation = deprecation
        self.access_log = access_log
        # Built once: HSTS on every answer when the process is told it is behind HTTPS.
        self._security = (*ALWAYS, HSTS) if hsts else ALWAYS
        self._https_security = (*ALWAYS, HSTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        if method == "HEAD":
            scope, send = head_as_get(scope, send)
        headers = _header_map(scope)
        request_id = request_id_from(headers.get("x-request-id"))
        scope[REQUEST_ID_KEY] = request_id
        trace = parse_traceparent(headers.get("traceparent"))
        context = bind_request_context(request_id, trace[0] if trace else None, new_span_id())
        original_path = scope["path"]
        exchange = _Exchange()
        version: ApiVersion | None = None
        unversioned = False
        try:
            try:
                version, routed_path = resolve(original_path, headers.get("api-version"))
            except ArchwayError as exc:
                refusal = self._decorating_send(send, scope, request_id, None, False, exchange)
                await error_response(scope, exc)(scope, receive, refusal)
                return
            if routed_path != original_path:
                unversioned = True
                scope["archway.original_path"] = original_path
                scope["path"] = routed_path
                scope["raw_path"] = path_reference(routed_path).encode("ascii")
            scope[VERSION_KEY] = version
            wrapped = self._decorating_send(
                send, scope, request_id, version, unversioned, exchange)
            try:
                await self.app(scope, receive, wrapped)
            except Exception:
                _logger.exception("unhandled error")
            else:
                if not exchange.started:
                    _logger.error("the application returned without sending a response")
            if not exchange.started:
                await self._answer_failure(
                    scope, receive, send, request_id, version, unversioned, exchange)
        finally:
            self._finish(
                scope, method, headers, original_path, exchange.status, started, request_id)
            reset_request_context(context)

    async def _answer_failure(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        request_id: str,
        version: ApiVersion | None,
        unversioned: bool,
        exchange: _Exchange,
    ) -> None:
        """A 500 problem for a request that has no answer yet. It gets the minimal headers only
        (request id, version, security; no ``Link``, ``Sunset`` or ``Vary``), so what failed
        while decorating the first answer cannot fail this one."""
        fallback = self._decorating_send(
            send, scope, request_id, version, unversioned, exchange, minimal=True)
        await problem_response(
            scope, 500, detail="An unexpected error occurred; it has been logged."
        )(scope, receive, fallback)

    def _decorating_send(
        self,
        send: Send,
        scope: Scope,
        request_id: str,
        version: ApiVersion | None,
        unversioned: bool,
        exchange: _Exchange,
        *,
        minimal: bool = False,
    ) -> Send:
        deprecation = self.deprecation
        security = self._https_security if scope.get("scheme") == "https" else self._security
        # An answer to a credentialed request is the caller's own: no cache keeps it unless
        # its route said otherwise (the products' public caching).
        private = version is not None or any(k == b"authorization" for k, _ in scope["headers"])

        async def decorated(message: Message) -> None:
            if message["type"] != "http.response.start":
                await send(message)
                return
            raw = message.setdefault("headers", [])
            out = MutableHeaders(raw=raw)
            out["x-request-id"] = request_id
            out["api-version"] = str(int(version or ApiVersion.V1))
            raw.extend(security)
            if "content-security-policy" not in out:  # a page states its own (see the module)
                raw.append(API_CSP)
            if private and "cache-control" not in out:
                out["cache-control"] = "no-store"
            if version is not None:
                if unversioned and not minimal:
                    out.append("vary", "API-Version")
                if version is ApiVersion.V1 and not minimal:
                    out["deprecation"] = f"@{deprecation.deprecated_at}"
                    out["sunset"] = deprecation.sunset
                    raw.append((b"link", _successor_link(scope)))
            # From here on the answer is the server's: an error while decorating (above)
            # still leaves room for a 500 problem, one in the server's send does not.
            exchange.started = True
            await send(message)
            exchange.status = message["status"]

        return decorated

    def _finish(
        self,
        scope: Scope,
        method: str,
        headers: dict[str, str],
        path: str,
        status: int,
        started: float,
        request_id: str,
    ) -> None:
        duration = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        self.metrics.observe(template, method, status, duration)
        if self.access_log:
            client = scope.get("client")
            log_access(
                method, path, template, status, duration, request_id,
                client[0] if client else "", headers.get("user-agent", ""),
            )


class _Exchange:
    """What became of one request's answer: whether the server has it, and its status (what
    metrics and the access log record: the status sent, 500 when none was)."""

    __slots__ = ("started", "status")

    def __init__(self) -> None:
        self.started = False
        self.status = 500


def _successor_link(scope: Scope) -> bytes:
    target = uri_reference(successor_path(scope["path"]), scope.get("query_string", b""))
    return b"<" + target.encode("ascii") + b'>; rel="successor-version"'


def _header_map(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}

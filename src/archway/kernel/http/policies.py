"""The HTTP service defaults every HTTP process applies, as one raw ASGI middleware.

One pass per request does request ids, trace context, version resolution and headers
(``API-Version``, v1 ``Deprecation``/``Sunset``/``Link``), security headers, metrics and the
access log, and turns an unexpected exception into a bare 500 problem. It is plain ASGI rather
than ``BaseHTTPMiddleware`` because it runs on every request and must stay cheap.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archway.kernel.errors import ArchwayError
from archway.kernel.http.problems import REQUEST_ID_KEY, error_response, problem_response
from archway.kernel.http.versioning import ApiVersion, resolve, successor_path
from archway.kernel.ids import new_id
from archway.kernel.observability.logging import (
    bind_request_context,
    log_access,
    new_span_id,
    parse_traceparent,
    reset_request_context,
)
from archway.kernel.observability.metrics import HttpMetrics

VERSION_KEY = "archway.api_version"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_logger = logging.getLogger("archway.http")

_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


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
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.deprecation = deprecation
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = _header_map(scope)
        request_id = headers.get("x-request-id", "")
        if not _REQUEST_ID.match(request_id):
            request_id = new_id()
        scope[REQUEST_ID_KEY] = request_id
        trace = parse_traceparent(headers.get("traceparent"))
        context = bind_request_context(request_id, trace[0] if trace else None, new_span_id())
        original_path = scope["path"]
        status_holder = [500]
        version: ApiVersion | None = None
        try:
            version, routed_path = resolve(original_path, headers.get("api-version"))
            if routed_path != original_path:
                scope["archway.original_path"] = original_path
                scope["path"] = routed_path
                scope["raw_path"] = routed_path.encode()
            scope[VERSION_KEY] = version
        except ArchwayError as exc:
            send = self._decorating_send(send, scope, request_id, None, False, status_holder)
            await error_response(scope, exc)(scope, receive, send)
            self._finish(scope, headers, original_path, status_holder[0], started, request_id)
            reset_request_context(context)
            return

        unversioned = "archway.original_path" in scope
        wrapped = self._decorating_send(
            send, scope, request_id, version, unversioned, status_holder
        )
        try:
            await self.app(scope, receive, wrapped)
        except Exception:
            _logger.exception("unhandled error")
            if not scope.get("archway.response_started"):
                await problem_response(
                    scope, 500, detail="An unexpected error occurred; it has been logged."
                )(scope, receive, wrapped)
        finally:
            self._finish(scope, headers, original_path, status_holder[0], started, request_id)
            reset_request_context(context)

    def _decorating_send(
        self,
        send: Send,
        scope: Scope,
        request_id: str,
        version: ApiVersion | None,
        unversioned: bool,
        status_holder: list[int],
    ) -> Send:
        deprecation = self.deprecation

        async def decorated(message: Message) -> None:
            if message["type"] == "http.response.start":
                scope["archway.response_started"] = True
                status_holder[0] = message["status"]
                raw = message.setdefault("headers", [])
                out = MutableHeaders(raw=raw)
                out["x-request-id"] = request_id
                out["api-version"] = str(int(version or ApiVersion.V1))
                raw.extend(_SECURITY_HEADERS)
                content_type = out.get("content-type", "")
                if "html" not in content_type:
                    raw.append(_API_CSP)
                if version is not None:
                    if "cache-control" not in out:
                        out["cache-control"] = "no-store"
                    if unversioned:
                        out.append("vary", "API-Version")
                    if version is ApiVersion.V1:
                        out["deprecation"] = f"@{deprecation.deprecated_at}"
                        out["sunset"] = deprecation.sunset
                        out.append("link", f'<{_successor(scope)}>; rel="successor-version"')
            await send(message)

        return decorated

    def _finish(
        self,
        scope: Scope,
        headers: dict[str, str],
        path: str,
        status: int,
        started: float,
        request_id: str,
    ) -> None:
        duration = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "<unmatched>"
        self.metrics.observe(template, scope["method"], status, duration)
        if self.access_log:
            client = scope.get("client")
            log_access(
                scope["method"], path, template, status, duration, request_id,
                client[0] if client else "", headers.get("user-agent", ""),
            )


def _successor(scope: Scope) -> str:
    path = successor_path(scope["path"])
    query = scope.get("query_string", b"")
    return path + ("?" + query.decode("latin-1") if query else "")


def _header_map(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}

"""What a gRPC call leaves behind: its request and trace ids in every log line, and its count and
duration on ``/metrics``, with the HTTP edge's helpers and metrics.

A call's ``x-request-id`` metadata is its request id (a new one when absent or unsafe, as
``X-Request-ID`` is), sent back as initial metadata; its W3C ``traceparent`` metadata puts it
in the caller's trace, with a span id of its own (``kernel.observability.logging``, as
:class:`~archway.kernel.http.policies.HttpPolicies` does for a request). Events a call's
command writes carry that ``traceparent`` on (``kernel.events.cloudevent``). Archway does not
run an OpenTelemetry SDK on either side: trace context travels as W3C ids in logs and events.

Each call is counted in ``archway_http_requests_total`` and timed in
``archway_http_request_duration_seconds`` with ``protocol="grpc"``, its full method name as the
route and its status code's name as the status.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextvars import Token

import grpc

from archway.kernel.observability.logging import (
    RequestContext,
    bind_request_context,
    new_span_id,
    parse_traceparent,
    request_id_from,
    reset_request_context,
)
from archway.kernel.observability.metrics import HttpMetrics

REQUEST_ID_KEY = "x-request-id"


class CallTelemetry:
    """One call's ids and timing, from its start (:meth:`start`) to :meth:`finish`."""

    __slots__ = ("_context", "_method", "_metrics", "_started", "code", "request_id")

    def __init__(self, metrics: HttpMetrics | None, method: str) -> None:
        self._metrics = metrics
        self._method = method
        self._started = 0.0
        self._context: Token[RequestContext | None] | None = None
        self.code: grpc.StatusCode | None = None  # set when the call ends in a refusal
        self.request_id = ""

    def start(self, metadata: Sequence[tuple[str, str | bytes]]) -> None:
        self._started = time.perf_counter()
        request_id = traceparent = None
        for key, value in metadata:
            if isinstance(value, str):
                if key == REQUEST_ID_KEY and request_id is None:
                    request_id = value
                elif key == "traceparent" and traceparent is None:
                    traceparent = value
        self.request_id = request_id_from(request_id)
        trace = parse_traceparent(traceparent)
        self._context = bind_request_context(
            self.request_id, trace[0] if trace else None, new_span_id())

    def finish(self, code: grpc.StatusCode) -> None:
        if self._context is not None:
            reset_request_context(self._context)
            self._context = None
        if self._metrics is not None:
            self._metrics.observe(self._method, "POST", code.name,
                                  time.perf_counter() - self._started, protocol="grpc")

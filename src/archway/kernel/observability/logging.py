"""Structured logs: one JSON object per line, with Elastic Common Schema field names.

A log shipper can index these lines as they are, without parsing rules, and a request can be
followed across lines (and services) through ``http.request.id`` and ``trace.id``, which are
taken from a context variable so that no code has to pass them to each log call.

Stack traces are written here, to the logs, and never put in a response: clients get a
request id that leads an operator to the full line.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import IO, Final, NamedTuple

import orjson

from archway.kernel.ids import new_id

ECS_VERSION: Final = "8.11.0"
SERVICE_NAME: Final = "archway"

_HANDLER_NAME: Final = "archway.ecs-json"
_ACCESS_DATASET: Final = "archway.access"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_ZERO_TRACE_ID: Final = "0" * 32
_ZERO_SPAN_ID: Final = "0" * 16

_access_logger = logging.getLogger("archway.access")


class RequestContext(NamedTuple):
    """Ids of the request being served; every log line written while it is bound carries them."""

    request_id: str
    trace_id: str | None
    span_id: str | None


_request_context: ContextVar[RequestContext | None] = ContextVar(
    "archway_request_context", default=None
)


def bind_request_context(
    request_id: str, trace_id: str | None, span_id: str | None
) -> Token[RequestContext | None]:
    """Bind the ids for the current task; pass the token to :func:`reset_request_context`."""
    return _request_context.set(RequestContext(request_id, trace_id, span_id))


def reset_request_context(token: Token[RequestContext | None]) -> None:
    """Restore the context that was bound before the matching :func:`bind_request_context`."""
    _request_context.reset(token)


def current_request_context() -> RequestContext | None:
    """The bound ids, for code that must show or forward them (error bodies, outgoing calls)."""
    return _request_context.get()


def request_id_from(value: str | None) -> str:
    """The caller's request id (``X-Request-ID``, gRPC's ``x-request-id``) when it is a safe
    token (letters, digits, ``._:-``, at most 128), else a new one."""
    return value if value is not None and _REQUEST_ID.fullmatch(value) else new_id()


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """Return ``(trace_id, parent_span_id)`` from a W3C ``traceparent`` header, else ``None``.

    Only version ``00`` is accepted, in lower-case hex as the spec requires; a malformed value
    is ignored (the request then starts a new trace) rather than refused, as the spec asks.
    """
    if value is None or len(value) != 55:
        return None
    match = _TRACEPARENT.fullmatch(value)
    if match is None:
        return None
    trace_id, parent_id = match.groups()
    if trace_id == _ZERO_TRACE_ID or parent_id == _ZERO_SPAN_ID:
        return None
    return trace_id, parent_id


# Trace and span ids must be unique, not secret (W3C Trace Context): a seeded PRNG serves, and
# unlike os.urandom it costs no system call on every request.
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))  # workers never share


def new_trace_id() -> str:
    """A random 128-bit trace id in lower-case hex, for requests that arrive without one."""
    return f"{_ids.getrandbits(128) or 1:032x}"


def new_span_id() -> str:
    """A random 64-bit span id in lower-case hex: this service's span within the trace."""
    return f"{_ids.getrandbits(64) or 1:016x}"


class EcsJsonFormatter(logging.Formatter):
    """Render a record as one line of ECS JSON.

    Extra fields come from ``extra={"ecs": {...}}`` and are merged last, as given, so callers
    use dotted ECS names (``"http.request.method"``) and may override the bound context.
    """

    def __init__(self) -> None:
        super().__init__()
        # gmtime + strftime are the slow part of a timestamp, and their result changes only
        # once a second, so the last one is kept.
        self._last_second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "@timestamp": self._timestamp(record.created),
            "log.level": record.levelname.lower(),
            "log.logger": record.name,
            "message": record.getMessage(),
            "ecs.version": ECS_VERSION,
            "service.name": SERVICE_NAME,
            "process.pid": record.process,
        }
        context = _request_context.get()
        if context is not None:
            document["http.request.id"] = context.request_id
            if context.trace_id is not None:
                document["trace.id"] = context.trace_id
            if context.span_id is not None:
                document["span.id"] = context.span_id
        if record.exc_info is not None:
            exc_type, exc, _ = record.exc_info
            if exc_type is not None:  # (None, None, None) when logged outside an except block
                if not record.exc_text:
                    record.exc_text = self.formatException(record.exc_info)
                document["error.type"] = _type_name(exc_type)
                document["error.message"] = str(exc)
                document["error.stack_trace"] = record.exc_text
        extra = getattr(record, "ecs", None)
        if isinstance(extra, Mapping):
            document.update(extra)
        return orjson.dumps(document, default=str).decode()

    def _timestamp(self, created: float) -> str:
        second, millis = divmod(int(created * 1000), 1000)
        last = self._last_second
        if last[0] != second:
            last = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._last_second = last
        return f"{last[1]}.{millis:03d}Z"


def _type_name(exc_type: type[BaseException]) -> str:
    """``ValueError`` for built-ins, ``module.Qualname`` otherwise, so the type is unambiguous."""
    if exc_type.__module__ == "builtins":
        return exc_type.__qualname__
    return f"{exc_type.__module__}.{exc_type.__qualname__}"


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Send every log record, uvicorn's included, through one ECS JSON handler on the root.

    Calling it again replaces the handler it installed before (no duplicate lines) and leaves
    other handlers alone, such as pytest's capture. ``stream`` defaults to standard error, so
    standard output stays free for command output. uvicorn's access logger is switched off
    because :func:`log_access` writes a richer line; run uvicorn with ``log_config=None`` (or
    call this after building its config) so that it does not install its own handlers again.
    """
    root = logging.getLogger()
    root.setLevel(level.upper())  # first: an unknown level raises before anything changes
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
        handler.close()
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(EcsJsonFormatter())
    root.addHandler(handler)

    for name in ("uvicorn", "uvicorn.error"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.setLevel(logging.NOTSET)
        server_logger.propagate = True
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False
    uvicorn_access.disabled = True


def log_access(
    method: str,
    path: str,
    route: str | None,
    status: int,
    duration_s: float,
    request_id: str,
    client_ip: str | None,
    user_agent: str | None,
) -> None:
    """Write one access line on ``archway.access``; runs on every request, so it stays cheap.

    ``route`` is the matched path template (``None`` when nothing matched). The query string is
    left out on purpose: it may carry tokens or personal data. The request id is passed in, not
    read from the context, so the line is right even when written after the context is reset.
    """
    if not _access_logger.isEnabledFor(logging.INFO):
        return
    fields: dict[str, object] = {
        "event.dataset": _ACCESS_DATASET,
        "http.request.id": request_id,
        "http.request.method": method,
        "url.path": path,
        "http.response.status_code": status,
        "event.duration": round(duration_s * 1_000_000_000),
    }
    if route is not None:
        fields["http.route"] = route
    if client_ip is not None:
        fields["client.ip"] = client_ip
    if user_agent is not None:
        fields["user_agent.original"] = user_agent
    # makeRecord + handle is what ``info()`` does, minus the stack walk that finds the caller:
    # the caller is always this function, and the walk costs about a fifth of the line.
    record = _access_logger.makeRecord(
        _access_logger.name, logging.INFO, __file__, 0, "%s %s %d", (method, path, status),
        None, extra={"ecs": fields},
    )  # fmt: skip
    _access_logger.handle(record)

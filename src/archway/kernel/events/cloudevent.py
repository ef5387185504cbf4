"""CloudEvents 1.0 in structured JSON mode, through the CloudEvents SDK.

Every Archway integration event has a versioned ``type`` (``archway.orders.order_placed.v1``),
a ``source`` naming its context (``/archway/orders``), the aggregate id as ``subject``, JSON
``data`` and a W3C ``traceparent`` extension, so one trace follows a saga across contexts and,
later, across services. The trace is the current request's when there is one (a command), the
consumed event's while a consumer runs (see :func:`handling`), else a new one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from cloudevents.core.base import BaseCloudEvent, EventFactory
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from archway.kernel.ids import new_id
from archway.kernel.observability.logging import (
    bind_request_context,
    current_request_context,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    reset_request_context,
)

__all__ = ["CloudEvent", "Event", "from_json", "handling", "make_event", "to_json"]

Event = BaseCloudEvent
"""What the bus carries: the SDK's CloudEvent contract."""

class _OrjsonFormat(JSONFormat):
    """The SDK's JSON format, with orjson for the one shape Archway writes (1.0, JSON data).

    Writing and reading the envelope through the standard library's ``json`` and dateutil was
    about a tenth of the saga's time per order (py-spy, one core). Any other shape (binary
    data, another spec version) goes to the SDK's own code; the output is the same document.
    """

    def write(self, event: BaseCloudEvent) -> bytes:
        data = event.get_data()
        attributes = event.get_attributes()
        if not isinstance(data, dict) or attributes.get("datacontenttype") != "application/json":
            return super().write(event)
        return orjson.dumps({**attributes, "data": data}, option=orjson.OPT_UTC_Z)

    def read(self, event_factory: EventFactory | None, data: str | bytes) -> BaseCloudEvent:
        document = orjson.loads(data)
        if (event_factory is None or not isinstance(document, dict)
                or document.get("specversion") != "1.0" or "data_base64" in document):
            return super().read(event_factory, data)
        if "time" in document:
            document["time"] = datetime.fromisoformat(document["time"])
        return event_factory(document, document.pop("data", None))


_FORMAT = _OrjsonFormat()


def make_event(
    event_type: str,
    source: str,
    subject: str,
    data: Mapping[str, Any],
    *,
    event_id: str | None = None,
    time: datetime | None = None,
) -> Event:
    """A CloudEvent with a UUIDv7 id, the time now (UTC) and the current ``traceparent``."""
    return CloudEvent({
        "id": event_id or new_id(),
        "type": event_type,
        "source": source,
        "subject": subject,
        "time": time or datetime.now(UTC),
        "datacontenttype": "application/json",
        "traceparent": _current_traceparent(),
    }, dict(data))


def to_json(event: Event) -> bytes:
    """Structured mode: attributes and data in one JSON document."""
    return _FORMAT.write(event)


def from_json(payload: str | bytes) -> Event:
    return _FORMAT.read(CloudEvent, payload)


def data_of(event: Event) -> dict[str, Any]:
    """The event's JSON data; an event without an object body is a producer's bug."""
    data = event.get_data()
    if not isinstance(data, dict):
        raise TypeError(f"event {event.get_id()} has no JSON object as data")
    return data


@contextmanager
def handling(event: Event) -> Iterator[None]:
    """Bind the event's trace while a consumer handles it: what it logs and emits joins the
    trace of the command that started the saga."""
    parsed = parse_traceparent(event.get_extension("traceparent"))
    trace_id = parsed[0] if parsed else new_trace_id()
    token = bind_request_context(event.get_id(), trace_id, new_span_id())
    try:
        yield
    finally:
        reset_request_context(token)


def _current_traceparent() -> str:
    context = current_request_context()
    if context is not None and context.trace_id and context.span_id:
        return f"00-{context.trace_id}-{context.span_id}-01"
    return f"00-{new_trace_id()}-{new_span_id()}-01"

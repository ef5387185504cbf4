"""Kernel events: CloudEvents round trip and trace propagation, the in-process bus, metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import MetaData

from archway.kernel.db import Work
from archway.kernel.events.bus import BusStopped, DeliveryFailed, InProcessBus, PartiallyHandled
from archway.kernel.events.cloudevent import Event, from_json, handling, make_event, to_json
from archway.kernel.events.metrics import EventMetrics
from archway.kernel.events.tables import inbox_table, outbox_table
from archway.kernel.observability.logging import (
    bind_request_context,
    current_request_context,
    reset_request_context,
)

T = TypeVar("T")
TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def test_events_are_structured_cloudevents_that_survive_a_round_trip() -> None:
    event = make_event("archway.test.thing_done.v1", "/archway/test", "thing-1", {"n": 1})
    document = to_json(event)
    again = from_json(document)
    assert again.get_attributes() == event.get_attributes()
    assert again.get_data() == {"n": 1}
    assert orjson.loads(document)["specversion"] == "1.0"
    assert event.get_subject() == "thing-1"
    assert len(event.get_id()) == 36


def test_an_event_made_in_a_request_carries_its_trace() -> None:
    token = bind_request_context("req-1", TRACE, SPAN)
    try:
        event = make_event("archway.test.a.v1", "/archway/test", "s", {})
    finally:
        reset_request_context(token)
    assert event.get_extension("traceparent") == f"00-{TRACE}-{SPAN}-01"
    outside = make_event("archway.test.a.v1", "/archway/test", "s", {})
    assert outside.get_extension("traceparent").startswith("00-")
    assert TRACE not in outside.get_extension("traceparent")


def test_a_consumer_runs_in_the_trace_of_the_event_it_handles() -> None:
    token = bind_request_context("req-1", TRACE, SPAN)
    try:
        event = make_event("archway.test.a.v1", "/archway/test", "s", {})
    finally:
        reset_request_context(token)
    with handling(event):
        context = current_request_context()
        answer = make_event("archway.test.b.v1", "/archway/test", "s", {})
    assert context is not None and context.trace_id == TRACE
    assert answer.get_extension("traceparent").split("-")[1] == TRACE
    assert current_request_context() is None


async def test_the_bus_delivers_to_every_subscriber_and_reports_failures() -> None:
    bus, seen = InProcessBus(), []
    await bus.start()

    async def good(events: Sequence[Event]) -> None:
        seen.extend(event.get_id() for event in events)

    async def bad(events: Sequence[Event]) -> None:
        raise RuntimeError("boom")

    await bus.subscribe("bad", ["t.v1"], bad)
    await bus.subscribe("good", ["t.v1"], good)
    event = make_event("t.v1", "/archway/test", "s", {})
    with pytest.raises(DeliveryFailed) as failed:
        await bus.publish([event])
    assert failed.value.delivered == 0
    assert seen == [event.get_id()]  # the failing consumer did not starve the other
    await bus.publish([make_event("other.v1", "/archway/test", "s", {})])
    with pytest.raises(ValueError):
        await bus.subscribe("good", ["t.v1"], good)


async def test_the_bus_delivers_only_between_start_and_stop() -> None:
    bus, seen = InProcessBus(), []

    async def record(events: Sequence[Event]) -> None:
        seen.extend(event.get_id() for event in events)

    await bus.subscribe("c", ["t.v1"], record)
    event = make_event("t.v1", "/archway/test", "s", {})
    with pytest.raises(BusStopped):
        await bus.publish([event])  # subscribed, not started: nothing is delivered yet
    await bus.start()
    await bus.start()  # idempotent
    await bus.publish([event])
    assert bus.pending() == 0  # delivered in-process: nothing published is left unhandled
    await bus.stop()
    with pytest.raises(BusStopped):
        await bus.publish([event])  # a relay counts it as a failure and delivers it later
    assert seen == [event.get_id()]


async def test_a_batch_reaches_each_consumer_filtered_and_in_order() -> None:
    bus, seen = InProcessBus(), {"a": [], "ab": []}
    await bus.start()

    def recorder(name: str) -> Callable[[Sequence[Event]], Awaitable[None]]:
        async def record(events: Sequence[Event]) -> None:
            seen[name].append([event.get_type() for event in events])
        return record

    await bus.subscribe("a", ["a.v1"], recorder("a"))
    await bus.subscribe("ab", ["a.v1", "b.v1"], recorder("ab"))
    await bus.publish([make_event(t, "/archway/test", "s", {}) for t in ("a.v1", "b.v1", "a.v1")])
    assert seen == {"a": [["a.v1", "a.v1"]], "ab": [["a.v1", "b.v1", "a.v1"]]}


async def test_a_consumer_failing_midway_limits_the_delivered_prefix() -> None:
    bus = InProcessBus()
    await bus.start()

    async def fails_on_second(events: Sequence[Event]) -> None:
        if len(events) > 1:
            raise PartiallyHandled(1, "second one failed")

    async def takes_all(events: Sequence[Event]) -> None:
        return None

    await bus.subscribe("partial", ["b.v1"], fails_on_second)
    await bus.subscribe("all", ["a.v1", "b.v1"], takes_all)
    events = [make_event(t, "/archway/test", "s", {}) for t in ("a.v1", "b.v1", "a.v1", "b.v1")]
    with pytest.raises(DeliveryFailed) as failed:
        await bus.publish(events)
    assert failed.value.delivered == 3  # the partial consumer's second event is the 4th


class _DownDatabase:
    """A database that is unreachable: every unit of work raises."""

    async def read(self, work: Work[T]) -> T:
        raise ConnectionError("database down")

    async def write(self, work: Work[T]) -> T:
        raise ConnectionError("database down")


async def test_event_metrics_leave_out_what_they_cannot_read_instead_of_failing() -> None:
    registry, metadata = CollectorRegistry(), MetaData()
    outbox, inbox = outbox_table(metadata, "down"), inbox_table(metadata, "down")
    metrics = EventMetrics(registry)
    metrics.watch_outbox(_DownDatabase(), outbox)
    metrics.watch_consumer(_DownDatabase(), "down.view", outbox, inbox, ["t.v1"])
    metrics.published("down_outbox", "t.v1")
    await metrics.refresh()
    text = generate_latest(registry).decode()
    assert 'archway_events_published_total{outbox="down_outbox",type="t.v1"} 1.0' in text
    assert 'archway_outbox_backlog{' not in text  # absent, not a stale or reassuring zero
    assert 'archway_projection_lag_events{' not in text


def test_the_envelope_is_the_sdks_document_and_reads_back_both_ways() -> None:
    import json

    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent as SdkEvent

    from archway.kernel.events.cloudevent import from_json, make_event, to_json

    event = make_event("archway.test.thing.v1", "/archway/test", "thing-1",
                       {"amount": 1999, "lines": [{"sku": "A-1", "name": "Café"}]})
    sdk = JSONFormat()
    assert json.loads(to_json(event)) == json.loads(sdk.write(event))
    for parsed in (from_json(sdk.write(event)), sdk.read(SdkEvent, to_json(event))):
        assert parsed.get_attributes() == event.get_attributes()
        assert parsed.get_data() == event.get_data()


def test_binary_data_takes_the_sdks_own_path() -> None:
    from cloudevents.core.v1.event import CloudEvent as SdkEvent

    from archway.kernel.events.cloudevent import from_json, to_json

    event = SdkEvent({"id": "1", "type": "t", "source": "/s",
                      "datacontenttype": "application/octet-stream"}, b"\x00\x01")
    written = to_json(event)
    assert b"data_base64" in written
    assert from_json(written).get_data() == b"\x00\x01"

"""``/metrics`` and ``/readyz`` for the event machinery: counters after a saga, relay health."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Table

from archway.kernel.db import Database
from archway.kernel.events.cloudevent import make_event
from archway.kernel.events.outbox import append
from archway.kernel.events.relay import OutboxRelay
from archway.kernel.events.relays import Relays
from archway.kernel.http.ops import build_ops_router
from archway.kernel.observability.metrics import HttpMetrics
from archway.orders.store import orders_outbox
from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.http.test_orders_api import ALICE, place, settled
from tests.ordering import eventually, stocked_product
from tests.relaying import FlakyBus, private_outbox, write_events

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(text: str) -> Samples:
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def test_a_saga_shows_in_the_event_metrics(
    graph: Monolith, client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    alice = await auth_headers(ALICE, "orders:read orders:write")
    beans = await stocked_product(graph, "METRIC-1", on_hand=3)
    order = await place(client, alice, beans, 1)
    assert (await settled(client, alice, order["id"]))["status"] == "confirmed"
    await graph.relays.settle()

    samples = scrape((await client.get("/metrics")).text)
    placed = "archway.orders.order_placed.v1"
    assert value(samples, "archway_events_published_total",
                 outbox="orders_outbox", type=placed)
    assert value(samples, "archway_events_published_total",
                 outbox="catalog_outbox", type="archway.catalog.stock_reserved.v1")
    assert value(samples, "archway_events_consumed_total",
                 consumer="catalog.reservations", type=placed)
    assert value(samples, "archway_events_consumed_total",
                 consumer="orders.order_view", type=placed)
    for outbox in ("orders_outbox", "catalog_outbox"):
        assert value(samples, "archway_outbox_backlog", outbox=outbox) == 0
        assert value(samples, "archway_outbox_relay_failures_total", outbox=outbox) is not None
    assert value(samples, "archway_projection_lag_events", consumer="orders.order_view") == 0
    assert value(samples, "archway_projection_lag_seconds", consumer="orders.order_view") == 0


async def test_the_projection_lag_counts_what_the_consumer_has_not_applied(
    graph: Monolith, client: httpx.AsyncClient, database: Database
) -> None:
    # Written straight to the outbox, with no relay nudged: the order view has not seen it.
    await graph.relays.stop()
    try:
        event = make_event("archway.orders.order_placed.v1", "/archway/orders", "o-1", {})
        await database.write(lambda conn: append(conn, orders_outbox, [event]))
        samples = scrape((await client.get("/metrics")).text)
        assert value(samples, "archway_outbox_backlog", outbox="orders_outbox") == 1
        lag = {dict(labels)["consumer"]: count for (name, labels), count in samples.items()
               if name == "archway_projection_lag_events"}
        assert lag["orders.order_view"] == 1
        assert set(lag.values()) == {1}  # every read model is one event behind
        assert (value(samples, "archway_projection_lag_seconds",
                      consumer="orders.order_view") or 0) > 0
        await database.write(lambda conn: conn.execute(orders_outbox.delete()))
    finally:
        graph.relays.start()


@pytest.fixture
async def outbox(database: Database) -> AsyncIterator[Table]:
    async with private_outbox(database) as table:
        yield table


async def test_readyz_names_each_relay_and_fails_when_one_keeps_failing(
    database: Database, outbox: Table
) -> None:
    bus = FlakyBus()
    relay = OutboxRelay(database, outbox, bus, poll_interval=0.01,  # type: ignore[arg-type]
                        max_backoff=0.02, failing_after=0.1)
    app = FastAPI()
    app.include_router(build_ops_router(HttpMetrics(), {
        "database": database.ping, **Relays([relay]).readiness_checks()}))
    transport = httpx.ASGITransport(app=app)
    relay.start()
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://ops") as ops:
            async def readiness() -> tuple[int, dict[str, object]]:
                response = await ops.get("/readyz")
                return response.status_code, response.json()

            await write_events(database, outbox, 1)
            relay.nudge()
            await eventually(relay.pending, lambda n: n == 0)
            status, body = await readiness()
            assert status == 200
            assert body["checks"] == {"database": "ok", "relay:relaytest": "ok"}

            bus.broken = True
            await write_events(database, outbox, 1)
            relay.nudge()
            status, body = await eventually(readiness, lambda answer: answer[0] == 503)
            assert body == {"status": "unavailable",
                            "checks": {"database": "ok", "relay:relaytest": "failing"}}

            bus.broken = False
            await eventually(readiness, lambda answer: answer[0] == 200)
    finally:
        await relay.stop()

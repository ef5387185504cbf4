"""A poison event through the whole monolith: an order whose projection fails forever is parked
for that projection, every later order shows up, ``/metrics`` and ``/readyz`` report it, and the
CLI lists it and, once the cause is fixed, retries it so that the order shows exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select, update
from typer.testing import CliRunner

from archway.cli import app as cli
from archway.config import Settings
from archway.kernel.events.cloudevent import Event, data_of, make_event, to_json
from archway.kernel.events.dead_letters import DeadLetterStore
from archway.kernel.ids import new_id
from archway.orders.events import ORDER_CONFIRMED, ORDER_PLACED
from archway.orders.store import orders_dead_letters, orders_inbox, orders_outbox
from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.http.test_ops_events import scrape, value
from tests.http.test_orders_api import ALICE, BOB, place
from tests.ordering import eventually, stocked_product

VIEW = "orders.order_view"


class PoisonedOrderView:
    """Makes the order view fail on every event about the orders of one customer (a bug in
    the projection that only their orders hit), until ``fixed``. The view applies its events a
    batch at a time, so a batch holding one of them fails whole (the consumer then narrows it
    down, event by event)."""

    def __init__(self, graph: Monolith, customer_id: str) -> None:
        self.customer_id = customer_id
        self.consumer = graph.order_view.handle
        self.original = self.consumer._apply_batch
        self.orders: set[str] = set()

    def apply_batch(self, conn: Any, events: Sequence[Event]) -> None:
        for event in events:
            data = data_of(event)
            if event.get_type() == ORDER_PLACED and data.get("customer_id") == self.customer_id:
                self.orders.add(str(event.get_subject()))
            if event.get_subject() in self.orders:
                raise ValueError(f"cannot show order {event.get_subject()}")
        assert self.original is not None
        self.original(conn, events)

    def fix(self) -> None:
        self.consumer._apply_batch = self.original


@pytest.fixture
def poisoned(graph: Monolith, accounts: dict[str, str]) -> Iterator[PoisonedOrderView]:
    poison = PoisonedOrderView(graph, accounts[BOB])
    poison.consumer._apply_batch = poison.apply_batch
    try:
        yield poison
    finally:
        poison.fix()


async def run_cli(settings: Settings, *args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["events", "dead-letters", *args],
        env={"ARCHWAY_DATABASE_URL": settings.database_url})
    return result.exit_code, result.output


async def test_an_order_whose_projection_fails_is_parked_and_an_operator_retries_it(
    graph: Monolith, client: httpx.AsyncClient, auth_headers: AuthHeaders,
    settings: Settings, poisoned: PoisonedOrderView,
) -> None:
    alice = await auth_headers(ALICE, "orders:read orders:write")
    bob = await auth_headers(BOB, "orders:read orders:write")
    product = await stocked_product(graph, "DLQ-1", on_hand=10, price=500)

    poison_order = await place(client, bob, product)
    later_order = await place(client, alice, product)
    # The later order, from another customer, is not held back for good by the poison one
    # (only while the relay retries it, with backoff, ARCHWAY_EVENT_MAX_ATTEMPTS times).
    async def later() -> httpx.Response:
        return await client.get(f"/api/v1/orders/{later_order['id']}", headers=alice)

    shown = await eventually(
        later, lambda r: r.status_code == 200 and r.json()["status"] != "pending", timeout=30)
    assert shown.json()["status"] == "confirmed"

    # Parked for the order view only: the saga confirmed the order all the same.
    parked = await eventually(graph.dead_letters.parked, lambda letters: len(letters) == 2,
                              timeout=30)
    assert {(letter.consumer, letter.event_type) for letter in parked} == {
        (VIEW, ORDER_PLACED), (VIEW, ORDER_CONFIRMED)}
    assert all(letter.last_error.startswith("ValueError: cannot show order") for letter in parked)
    poison_url = f"/api/v1/orders/{poison_order['id']}"
    assert (await client.get(poison_url, headers=bob)).status_code == 404

    ready = await client.get("/readyz")
    assert ready.status_code == 200  # later events flow: degraded, not unready
    assert ready.json()["status"] == "degraded"
    assert ready.json()["details"]["dead_letters"] == {"status": "degraded", "parked": {VIEW: 2}}
    samples = scrape((await client.get("/metrics")).text)
    assert value(samples, "archway_events_dead_letters", consumer=VIEW) == 2
    for event_type in (ORDER_PLACED, ORDER_CONFIRMED):
        assert value(samples, "archway_events_dead_lettered_total",
                     consumer=VIEW, type=event_type) == 1

    code, listing = await run_cli(settings, "list")
    assert code == 0, listing
    assert all(letter.id in listing for letter in parked)
    assert VIEW in listing and "ValueError: cannot show order" in listing

    outcome, still = await graph.dead_letters.retry(parked[0].id)  # not fixed yet
    assert outcome == "failed" and still is not None
    assert still.attempts == parked[0].attempts + 1

    poisoned.fix()
    for letter in sorted(parked, key=lambda letter: letter.event_type != ORDER_PLACED):
        code, output = await run_cli(settings, "retry", letter.id)
        assert code == 0, output
        assert f"applied {letter.event_type}" in output
    code, output = await run_cli(settings, "retry", parked[0].id)
    assert code == 1 and "no dead letter" in output

    shown = await client.get(f"/api/v1/orders/{poison_order['id']}", headers=bob)
    assert shown.status_code == 200 and shown.json()["status"] == "confirmed"
    recorded = await graph.db.read(lambda conn: conn.execute(
        select(orders_inbox.c.event_id, func.count()).where(
            orders_inbox.c.consumer == VIEW,
            orders_inbox.c.event_id.in_([letter.event_id for letter in parked]),
        ).group_by(orders_inbox.c.event_id)).all())
    assert sorted(count for _, count in recorded) == [1, 1]  # applied exactly once each
    assert (await run_cli(settings, "list"))[1].strip() == "no dead letters"
    ready = await client.get("/readyz")
    assert ready.json()["status"] == "ready"
    assert ready.json()["details"]["dead_letters"] == {"status": "ok", "parked": {}}


UNREADABLE = "relay:orders_outbox"


async def test_an_outbox_row_that_cannot_be_read_is_parked_and_blocks_no_later_order(
    graph: Monolith, client: httpx.AsyncClient, auth_headers: AuthHeaders, settings: Settings,
) -> None:
    alice = await auth_headers(ALICE, "orders:read orders:write")
    product = await stocked_product(graph, "DLQ-2", on_hand=10, price=500)
    corrupt_id = new_id()
    await graph.db.write(lambda conn: conn.execute(insert(orders_outbox).values(
        event_id=corrupt_id, event_type=ORDER_PLACED, subject="", payload="{not an event",
        created_at=datetime.now(UTC), attempts=0)))

    order = await place(client, alice, product)  # committed after the corrupt row
    shown = await eventually(
        lambda: client.get(f"/api/v1/orders/{order['id']}", headers=alice),
        lambda r: r.status_code == 200 and r.json()["status"] != "pending", timeout=30)
    assert shown.json()["status"] == "confirmed"

    parked = await graph.dead_letters.parked()
    assert [(letter.consumer, letter.event_id, letter.payload) for letter in parked] == [
        (UNREADABLE, corrupt_id, "{not an event")]
    assert parked[0].attempts == settings.event_max_attempts
    row = await graph.db.read(lambda conn: conn.execute(select(orders_outbox).where(
        orders_outbox.c.event_id == corrupt_id)).one())
    assert row.published_at is not None and row.last_error == parked[0].last_error
    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "degraded"
    assert ready["details"]["dead_letters"]["parked"] == {UNREADABLE: 1}
    samples = scrape((await client.get("/metrics")).text)
    assert value(samples, "archway_events_dead_lettered_total",
                 consumer=UNREADABLE, type=ORDER_PLACED) == 1

    code, output = await run_cli(settings, "retry", parked[0].id)  # still unreadable
    assert code == 1 and "failed again, still parked" in output

    # An operator repairs the parked payload (here: an event no consumer takes), then retries.
    repaired = to_json(make_event("archway.orders.probe.v1", "/archway/orders", "x", {},
                                  event_id=corrupt_id)).decode()
    relay = graph.modules[2].relay  # the orders relay publishes what comes back
    await graph.db.write(lambda conn: conn.execute(update(orders_dead_letters).where(
        orders_dead_letters.c.id == parked[0].id).values(payload=repaired)))
    code, output = await run_cli(settings, "retry", parked[0].id)
    assert code == 0, output
    assert f"requeued {ORDER_PLACED} {corrupt_id}" in output
    relay.nudge()
    published = await eventually(
        lambda: graph.db.read(lambda conn: conn.execute(select(orders_outbox).where(
            orders_outbox.c.event_id == corrupt_id)).one()),
        lambda row: row.published_at is not None and row.last_error is None, timeout=10)
    assert published.payload == repaired
    assert await graph.dead_letters.parked() == []


async def test_retrying_a_letter_of_a_consumer_this_version_lacks_is_one_clear_line(
    graph: Monolith, settings: Settings,
) -> None:
    store = DeadLetterStore(graph.db, orders_dead_letters)
    event = make_event(ORDER_PLACED, "/archway/orders", "x", {})
    letter_id = await store.park("orders.retired_consumer", event, "ValueError: old", 5)
    code, output = await run_cli(settings, "retry", letter_id)
    assert code == 1
    assert output.strip() == (
        f"error: dead letter {letter_id} is for consumer orders.retired_consumer, which this "
        "version of Archway does not have; it stays parked")
    assert await store.get(letter_id) is not None

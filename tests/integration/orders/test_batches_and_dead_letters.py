"""A consumer that applies its batches whole still parks exactly its poison event.

The dead-letter guard blames the first event its handler did not handle. A batched consumer
(``apply_batch``) fails its whole batch on a poison event; the consumer then applies the batch
again event by event, so the events before the poison one are kept, the failure names it
(``PartiallyHandled``), and after its attempts it alone is parked while the rest of the batch
is applied. Tested here on the real batched consumers with the guard the topology wraps them in.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from archway.catalog.consumers import StockReservations
from archway.catalog.store import catalog_dead_letters
from archway.kernel.db import Database
from archway.kernel.events.bus import Handler
from archway.kernel.events.cloudevent import Event, data_of, make_event
from archway.kernel.events.dead_letters import DeadLetterOffice, DeadLetterStore
from archway.kernel.money import MAX_ACCUMULATED
from archway.orders.report_projections import CustomerSummaryProjection
from archway.orders.store import customer_summary, orders_dead_letters
from archway.topologies.monolith import Monolith
from tests.integration.orders.test_batched_consumers import (
    confirmed_events,
    orders_of,
    placed_events,
)
from tests.ordering import stock_of, stocked_product

MAX_ATTEMPTS = 2


async def deliver_until_done(guarded: Handler, events: Sequence[Event]) -> int:
    """Deliver ``events`` as the relay does, again after each failure, until the guard lets
    them through; returns how many deliveries failed."""
    failures = 0
    while True:
        try:
            await guarded(events)
        except Exception:  # noqa: BLE001 - the relay's retry, with no backoff
            failures += 1
            assert failures < 10, "the poison event was never parked"
            continue
        return failures


async def test_a_sum_overflowing_inside_a_batch_parks_that_event_and_the_rest_is_counted(
    graph: Monolith, database: Database
) -> None:
    product = await stocked_product(graph, "DL-SUMS", on_hand=1000)
    orders = orders_of(product, 6)  # customers 0, 1, 2, 0, 1, 2: 250 EUR each
    near_full = MAX_ACCUMULATED - 100  # customer-1's sum cannot take another order
    await database.write(lambda conn: conn.execute(insert(customer_summary).values(
        customer_id="customer-1", currency="EUR", orders_count=7, total_spent=near_full)))
    events = [*placed_events(orders), *confirmed_events(orders)]
    office = DeadLetterOffice(max_attempts=MAX_ATTEMPTS)
    guarded = office.guard(
        "orders.customer_summary", CustomerSummaryProjection(database).handle,
        DeadLetterStore(database, orders_dead_letters))

    failures = await deliver_until_done(guarded, events)

    parked = {letter.event_id for letter in await office.parked()}
    customer_1 = {event.get_id() for event in events[6:]
                  if data_of(event)["order_id"] in {orders[1].id, orders[4].id}}
    assert parked == customer_1  # its two confirmations, and nothing else
    assert all(letter.attempts == MAX_ATTEMPTS for letter in await office.parked())
    # Each poison event failed its deliveries until its last attempt, which parked it.
    assert failures == 2 * (MAX_ATTEMPTS - 1)

    def summary(conn: Connection) -> dict[str, tuple[int, int]]:
        rows = conn.execute(select(customer_summary)).all()
        return {row.customer_id: (row.orders_count, row.total_spent) for row in rows}

    assert await database.read(summary) == {
        "customer-0": (2, 500), "customer-1": (7, near_full), "customer-2": (2, 500)}


async def test_a_malformed_order_inside_a_batch_is_parked_and_the_others_are_reserved(
    graph: Monolith, database: Database
) -> None:
    product = await stocked_product(graph, "DL-RESERVE", on_hand=100)
    events = placed_events(orders_of(product, 5, quantity=2))
    poison = make_event("archway.orders.order_placed.v1", "/archway/orders", "order-x", {
        "order_id": "order-x", "lines": [{"product_id": product}]})  # no quantity
    events.insert(2, poison)
    reservations = StockReservations(database, graph.catalog)
    office = DeadLetterOffice(max_attempts=MAX_ATTEMPTS)
    guarded = office.guard("catalog.reservations", reservations.consumer,
                           DeadLetterStore(database, catalog_dead_letters))

    assert await deliver_until_done(guarded, events) == MAX_ATTEMPTS - 1

    [letter] = await office.parked()
    assert letter.event_id == poison.get_id()
    assert letter.last_error.startswith("KeyError")
    assert await stock_of(graph, product) == (100, 10)  # the five others, each once

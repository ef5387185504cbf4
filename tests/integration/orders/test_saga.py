"""The order saga end to end, through the outboxes, the relays and the in-process bus."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from archway.catalog.consumers import STOCK_RESERVED
from archway.catalog.store import catalog_outbox, products
from archway.kernel.auth.principal import Principal
from archway.kernel.errors import Unavailable
from archway.kernel.events.cloudevent import from_json, make_event
from archway.kernel.ids import new_id
from archway.orders.domain import LineRequest
from archway.orders.events import ORDER_CONFIRMED, ORDER_PLACED, SOURCE
from archway.orders.store import OrderRepository, orders_outbox
from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.http.test_orders_api import ALICE, BOB, place, settled
from tests.ordering import eventually, stock_of, stocked_product

Headers = dict[str, str]


@pytest.fixture
async def alice(auth_headers: AuthHeaders) -> Headers:
    return await auth_headers(ALICE, "orders:read orders:write")


@pytest.fixture
async def bob(auth_headers: AuthHeaders) -> Headers:
    return await auth_headers(BOB, "orders:read orders:write")


async def test_an_order_with_stock_is_confirmed_and_holds_it(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers
) -> None:
    beans = await stocked_product(graph, "BEAN-1", on_hand=5)
    cups = await stocked_product(graph, "CUP-1", on_hand=2, price=500)
    response = await client.post("/api/v1/orders", headers=alice, json={"lines": [
        {"product_id": beans, "quantity": 3}, {"product_id": cups, "quantity": 2}]})
    order = response.json()
    assert (await settled(client, alice, order["id"]))["status"] == "confirmed"
    assert await stock_of(graph, beans) == (5, 3)
    assert await stock_of(graph, cups) == (2, 2)


async def test_without_enough_stock_the_order_is_rejected_with_a_reason_and_nothing_held(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers
) -> None:
    plenty = await stocked_product(graph, "PLENTY", on_hand=50)
    scarce = await stocked_product(graph, "SCARCE", on_hand=1)
    order = (await client.post("/api/v1/orders", headers=alice, json={"lines": [
        {"product_id": plenty, "quantity": 10}, {"product_id": scarce, "quantity": 2}]})).json()
    shown = await settled(client, alice, order["id"])
    assert shown["status"] == "rejected"
    assert shown["rejection_reason"]
    assert await stock_of(graph, plenty) == (50, 0)  # all lines or none
    assert await stock_of(graph, scarce) == (1, 0)


async def test_cancelling_a_confirmed_order_releases_its_stock(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers
) -> None:
    beans = await stocked_product(graph, "BEAN-2", on_hand=4)
    order = await place(client, alice, beans, 3)
    await settled(client, alice, order["id"])
    assert await stock_of(graph, beans) == (4, 3)
    await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=alice)
    await eventually(lambda: stock_of(graph, beans), lambda level: level == (4, 0))
    await settled(client, alice, order["id"], status="cancelled")


async def test_a_pending_order_cancelled_at_once_never_holds_stock(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers
) -> None:
    beans = await stocked_product(graph, "BEAN-3", on_hand=4)
    order = await place(client, alice, beans, 2)
    cancelled = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=alice)
    assert cancelled.json()["status"] == "cancelled"
    assert await graph.relays.settle()
    await settled(client, alice, order["id"], status="cancelled")
    assert await stock_of(graph, beans) == (4, 0)


async def test_two_customers_racing_for_the_last_unit_get_one_confirmation(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    last = await stocked_product(graph, "LAST-1", on_hand=1)
    orders = await asyncio.gather(place(client, alice, last), place(client, bob, last))
    outcomes = [
        await settled(client, headers, order["id"])
        for headers, order in zip((alice, bob), orders, strict=True)
    ]
    assert sorted(o["status"] for o in outcomes) == ["confirmed", "rejected"]
    assert await stock_of(graph, last) == (1, 1)


async def test_events_are_cloudevents_with_source_subject_and_traceparent(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers
) -> None:
    beans = await stocked_product(graph, "BEAN-4", on_hand=1)
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    order = (await client.post(
        "/api/v1/orders", json={"lines": [{"product_id": beans, "quantity": 1}]},
        headers={**alice, "traceparent": f"00-{trace}-00f067aa0ba902b7-01"})).json()
    await settled(client, alice, order["id"])
    await graph.relays.settle()  # the view shows the answer before the relay marks it sent
    rows: list[Any] = await graph.db.read(lambda conn: conn.execute(
        select(orders_outbox).order_by(orders_outbox.c.position)).all())
    assert [row.event_type for row in rows] == [ORDER_PLACED, ORDER_CONFIRMED]
    assert all(row.published_at is not None and row.attempts == 1 for row in rows)
    placed = from_json(rows[0].payload)
    assert (placed.get_source(), placed.get_subject()) == (SOURCE, order["id"])
    assert placed.get_specversion() == "1.0"
    # The whole saga, catalog's answer and the confirmation included, is one trace.
    traces = [from_json(row.payload).get_extension("traceparent") for row in rows]
    assert [t.split("-")[1] for t in traces] == [trace, trace], traces
    answer = await graph.db.read(lambda conn: conn.execute(
        select(catalog_outbox.c.payload)).scalar_one())
    reply = from_json(answer)
    assert (reply.get_type(), reply.get_source()) == (STOCK_RESERVED, "/archway/catalog")
    assert reply.get_extension("traceparent").split("-")[1] == trace


async def test_the_same_event_delivered_twice_has_one_effect(
    graph: Monolith, accounts: dict[str, str]
) -> None:
    """Catalog side: a redelivered order_placed holds stock once and answers once."""
    beans = await stocked_product(graph, "BEAN-5", on_hand=10)
    order_id = new_id()
    placed = make_event(ORDER_PLACED, SOURCE, order_id, {
        "order_id": order_id, "customer_id": "someone", "lines": [
            {"product_id": beans, "quantity": 4}]})
    # Two deliveries at once: on PostgreSQL the loser may fail on the reservation's key (and
    # roll back); the bus then reports it and the relay delivers again, which replays.
    raced = await asyncio.gather(
        *(graph.reservations.on_order_placed(placed) for _ in range(2)), return_exceptions=True)
    assert all(outcome is None or isinstance(outcome, IntegrityError) for outcome in raced)
    await graph.reservations.on_order_placed(placed)
    assert await stock_of(graph, beans) == (10, 4)

    def answers(conn: Any) -> int:
        return conn.execute(select(func.count()).select_from(catalog_outbox).where(
            catalog_outbox.c.subject == order_id)).scalar_one()

    assert await graph.db.read(answers) == 1


async def test_a_redelivered_stock_answer_confirms_once(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers
) -> None:
    """Orders side: the same stock_reserved twice appends one order_confirmed."""
    beans = await stocked_product(graph, "BEAN-6", on_hand=3)
    order = await place(client, alice, beans)
    await settled(client, alice, order["id"])
    answer = await graph.db.read(lambda conn: conn.execute(
        select(catalog_outbox.c.payload)).scalar_one())
    await graph.saga.on_stock_reserved(from_json(answer))
    await graph.saga.on_stock_reserved(from_json(answer))

    def confirmations(conn: Any) -> int:
        return conn.execute(select(func.count()).select_from(orders_outbox).where(
            orders_outbox.c.event_type == ORDER_CONFIRMED)).scalar_one()

    assert await graph.db.read(confirmations) == 1


async def test_the_order_view_can_be_rebuilt_from_the_event_log(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers
) -> None:
    beans = await stocked_product(graph, "BEAN-7", on_hand=3)
    order = await place(client, alice, beans)
    before = await settled(client, alice, order["id"])
    assert await graph.order_view.rebuild() == 2
    assert (await client.get(f"/api/v1/orders/{order['id']}", headers=alice)).json() == before


async def test_a_retry_with_its_key_answers_with_its_order_after_the_product_went_off_sale(
    graph: Monolith,
) -> None:
    """The key is checked in the placing transaction, and also when the order is refused:
    a product withdrawn since the first try must not turn the retry into a 422."""
    beans = await stocked_product(graph, "BEAN-7", on_hand=3)
    customer = Principal("retrying-customer", scopes=frozenset({"orders:write"}),
                         roles=frozenset({"customer"}))
    first = await graph.orders.place(customer, [LineRequest(beans, 1)], "retry-key-1")
    await graph.db.write(lambda conn: conn.execute(
        update(products).where(products.c.id == beans).values(active=False)))
    graph.catalog.forget_stock(None)

    again = await graph.orders.place(customer, [LineRequest(beans, 1)], "retry-key-1")
    assert again.order.id == first.order.id
    with pytest.raises(Unavailable):  # a new key is a new order, refused
        await graph.orders.place(customer, [LineRequest(beans, 1)], "retry-key-2")


async def test_commands_wait_for_admission_first(graph: Monolith, database: object) -> None:
    """The process's backpressure (the relays keeping up) is awaited before each command."""
    from archway.catalog.client import InProcessCatalogClient
    from archway.orders.service import OrdersService

    admitted: list[str] = []

    async def admission() -> None:
        admitted.append("in")

    orders = OrdersService(graph.db, InProcessCatalogClient(graph.catalog), orders=OrderRepository,
                           admission=admission)
    beans = await stocked_product(graph, "ADMIT-1", on_hand=5)
    customer = Principal(
        new_id(), scopes=frozenset({"orders:write"}), roles=frozenset({"customer"}))
    order = await orders.place_order(customer, [LineRequest(beans, 1)])
    assert admitted == ["in"]
    await orders.cancel_order(customer, order.id)
    assert admitted == ["in", "in"]

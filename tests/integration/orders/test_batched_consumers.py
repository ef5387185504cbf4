"""Consumers apply a batch in a few statements, whatever its size, with the effect of applying
its events one by one. Every statement is a round trip on PostgreSQL: per-event statements are
what kept the saga tens of seconds behind the commands there (see docs/cqrs.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection

from archway.catalog.consumers import STOCK_REJECTED, STOCK_RESERVED, StockReservations
from archway.catalog.store import catalog_outbox
from archway.kernel.db import Database
from archway.kernel.events.cloudevent import Event, data_of, from_json, make_event
from archway.kernel.events.inbox import Consumer
from archway.kernel.ids import new_id
from archway.kernel.money import Money
from archway.kernel.statements import DriverRead, Params
from archway.orders.consumers import OrderSaga
from archway.orders.domain import LineRequest, Order, Quote, place
from archway.orders.events import drain
from archway.orders.projections import OrderViewProjection, Projection
from archway.orders.report_projections import CustomerSummaryProjection, ProductSalesProjection
from archway.orders.service import OrdersService
from archway.orders.store import OrderRepository, customer_summary, order_view, product_sales
from archway.topologies.monolith import Monolith
from tests.ordering import stock_of, stocked_product

T = TypeVar("T")
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class CountingDb:
    """The real database, counting the statements its units of work hand the driver (an
    ``executemany`` is one: asyncpg sends its rows in one round trip)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.statements = 0

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await self._db.read(self._counted(work))

    async def write(self, work: Callable[[Connection], T]) -> T:
        return await self._db.write(self._counted(work))

    async def fetch(self, read: DriverRead, params: Params) -> list[Any]:
        self.statements += 1  # one statement, on the driver
        return await self._db.fetch(read, params)

    def _counted(self, work: Callable[[Connection], T]) -> Callable[[Connection], T]:
        def run(conn: Connection) -> T:
            fairy: Any = conn.connection
            raw = fairy.dbapi_connection
            fairy.dbapi_connection = _CountingConnection(raw, self)
            try:
                return work(conn)
            finally:
                fairy.dbapi_connection = raw
        return run


class _CountingConnection:
    def __init__(self, raw: Any, counter: CountingDb) -> None:
        self._raw, self._counter = raw, counter

    def cursor(self, *args: Any, **kwargs: Any) -> _CountingCursor:
        return _CountingCursor(self._raw.cursor(*args, **kwargs), self._counter)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class _CountingCursor:
    def __init__(self, raw: Any, counter: CountingDb) -> None:
        self._raw, self._counter = raw, counter

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._counter.statements += 1
        return self._raw.execute(*args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        self._counter.statements += 1
        return self._raw.executemany(*args, **kwargs)

    def __iter__(self) -> Any:
        return iter(self._raw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


@pytest.fixture
def counting(database: Database) -> CountingDb:
    return CountingDb(database)


def orders_of(product_id: str, count: int, quantity: int = 1) -> list[Order]:
    quote = Quote(product_id, "SKU", "A product", Money(250, "EUR"), True)
    return [place(new_id(), f"customer-{i % 3}", [LineRequest(product_id, quantity)],
                  {product_id: quote}, NOW) for i in range(count)]


def placed_events(orders: Sequence[Order]) -> list[Event]:
    return [event for order in orders for event in drain(order)]


def confirmed_events(orders: Sequence[Order]) -> list[Event]:
    for order in orders:
        order.confirm(NOW)
    return placed_events(orders)


async def statements_for(counting: CountingDb, consumer: Consumer, events: list[Event]) -> int:
    before = counting.statements
    await consumer(events)
    return counting.statements - before


async def test_reservations_take_as_many_statements_for_thirty_orders_as_for_three(
    graph: Monolith, counting: CountingDb
) -> None:
    product = await stocked_product(graph, "BATCH-1", on_hand=1000)
    consumer = StockReservations(counting, graph.catalog).consumer
    few = await statements_for(counting, consumer, placed_events(orders_of(product, 3)))
    many = await statements_for(counting, consumer, placed_events(orders_of(product, 30)))
    assert many == few
    assert await stock_of(graph, product) == (1000, 33)


async def test_a_batch_of_orders_is_reserved_in_turn_as_one_by_one(
    graph: Monolith, database: Database
) -> None:
    scarce = await stocked_product(graph, "BATCH-2", on_hand=5)
    orders = orders_of(scarce, 4, quantity=2)  # the third and fourth find 1 left
    events = placed_events(orders)
    await graph.reservations.consumer([*events, events[0]])  # a duplicate counts once
    rows = await database.read(lambda conn: conn.execute(
        select(catalog_outbox.c.payload).order_by(catalog_outbox.c.position)).scalars().all())
    answers = [from_json(row) for row in rows]
    assert [(data_of(a)["order_id"], a.get_type()) for a in answers] == [
        (orders[0].id, STOCK_RESERVED), (orders[1].id, STOCK_RESERVED),
        (orders[2].id, STOCK_REJECTED), (orders[3].id, STOCK_REJECTED)]
    assert await stock_of(graph, scarce) == (5, 4)
    assert [a.get_extension("traceparent") for a in answers] != [None] * 4


async def test_the_saga_takes_as_many_statements_for_thirty_answers_as_for_three(
    graph: Monolith, counting: CountingDb, database: Database
) -> None:
    product = await stocked_product(graph, "BATCH-3", on_hand=1000)
    few_orders, many_orders = orders_of(product, 3), orders_of(product, 30)

    def record(conn: Connection) -> None:  # the write model only: no event for the relays
        for order in [*few_orders, *many_orders]:
            OrderRepository(conn).add(order)
            order.events.clear()

    await database.write(record)
    service = OrdersService(counting, graph.orders._catalog, orders=OrderRepository)
    saga = OrderSaga(counting, service).consumer

    def answers(orders: list[Order]) -> list[Event]:
        return [make_event(STOCK_RESERVED, "/archway/catalog", order.id, {
            "order_id": order.id, "lines": []}) for order in orders]

    few = await statements_for(counting, saga, answers(few_orders))
    many = await statements_for(counting, saga, answers(many_orders))
    assert many == few
    statuses = await database.read(lambda conn: {
        order_id: OrderRepository(conn).get(order_id).status  # type: ignore[union-attr]
        for order_id in [order.id for order in many_orders]})
    assert set(statuses.values()) == {"confirmed"}


@pytest.mark.parametrize(
    "kind", [OrderViewProjection, CustomerSummaryProjection, ProductSalesProjection])
async def test_a_projection_takes_as_many_statements_for_thirty_orders_as_for_three(
    graph: Monolith, counting: CountingDb, kind: type[Projection]
) -> None:
    product = await stocked_product(graph, f"BATCH-{kind.__name__}", on_hand=1000)
    projection = kind(counting)
    counts = []
    for orders in (orders_of(product, 3), orders_of(product, 30)):
        placed = placed_events(orders)
        counts.append(await statements_for(
            counting, projection.handle, [*placed, *confirmed_events(orders)]))
    assert counts[1] == counts[0]


async def test_projections_applied_in_batches_read_as_applied_one_by_one(
    graph: Monolith, database: Database
) -> None:
    product = await stocked_product(graph, "BATCH-5", on_hand=1000)
    orders = orders_of(product, 6, quantity=2)
    events = placed_events(orders)
    events += confirmed_events(orders[:4])
    for order in orders[4:]:
        order.reject("insufficient stock", NOW)
    events += placed_events(orders[4:])
    orders[0].cancel(NOW)
    events += placed_events(orders[:1])
    kinds = (OrderViewProjection, CustomerSummaryProjection, ProductSalesProjection)

    async def read_models() -> list[Any]:
        def read(conn: Connection) -> list[Any]:
            return [sorted(tuple(row) for row in conn.execute(select(table)).all())
                    for table in (order_view, customer_summary, product_sales)]
        return await database.read(read)

    for kind in kinds:
        await kind(database).handle(events)
    batched = await read_models()
    for kind in kinds:  # emptied: the log these events never went through is empty
        await kind(database).rebuild()
    for kind in kinds:
        for event in events:
            await kind(database).handle.one(event)
    assert await read_models() == batched
    assert len(batched[0]) == 6 and len(batched[1]) == 3

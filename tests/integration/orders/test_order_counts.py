"""The orders pages' totals are kept by the order view's projection, not counted per page."""

from __future__ import annotations

from sqlalchemy import select

from archway.kernel.auth.principal import Principal
from archway.kernel.db import Database
from archway.kernel.events.outbox import append
from archway.kernel.pagination import PageRequest
from archway.orders.projections import OrderViewProjection
from archway.orders.queries import OrderQueries
from archway.orders.store import order_counts, orders_outbox
from tests.integration.orders.test_batched_consumers import orders_of, placed_events

READ = frozenset({"orders:read"})


def customer(subject: str) -> Principal:
    return Principal(subject, scopes=READ, roles=frozenset({"customer"}))


ADMIN = Principal("admin-1", scopes=READ, roles=frozenset({"admin"}))


async def kept_counts(database: Database) -> dict[str, int]:
    rows = await database.read(lambda conn: conn.execute(select(order_counts)).all())
    return {row.customer_id: row.orders for row in rows}


async def test_the_projection_keeps_each_customers_count_and_pages_show_it(
    database: Database,
) -> None:
    projection = OrderViewProjection(database)
    events = placed_events(orders_of("product-1", 5))  # customers 0, 1, 2, 0, 1
    await projection.handle(events[:2])
    await projection.handle([*events[2:], events[0]])  # a duplicate does not count again
    await projection.handle.one(events[1])
    assert await kept_counts(database) == {"customer-0": 2, "customer-1": 2, "customer-2": 1}

    queries = OrderQueries(database)
    page = await queries.list_orders(customer("customer-0"), PageRequest(limit=1, offset=0))
    assert (len(page.items), page.total) == (1, 2)
    past = await queries.list_orders(customer("customer-0"), PageRequest(limit=1, offset=5))
    assert (len(past.items), past.total) == (0, 2)
    everyone = await queries.list_orders(ADMIN, PageRequest(limit=2, offset=0))
    assert everyone.total == 5
    nobody = await queries.list_orders(customer("customer-9"), PageRequest(limit=2, offset=3))
    assert (len(nobody.items), nobody.total) == (0, 0)


async def test_a_rebuild_counts_what_it_replays(database: Database) -> None:
    events = placed_events(orders_of("product-1", 4))  # customers 0, 1, 2, 0
    await database.write(lambda conn: append(conn, orders_outbox, events))
    await database.write(lambda conn: conn.execute(order_counts.delete()))
    await OrderViewProjection(database).rebuild()
    assert await kept_counts(database) == {"customer-0": 2, "customer-1": 1, "customer-2": 1}

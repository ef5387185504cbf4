"""Orders over GraphQL: an order's own fields, and what the schema's order fields call (the
same service and query methods as ``orders.rest``: commands answer from the write model, reads
from the projections). The composition (``archway.graphql``) adds the fields that join other
contexts: ``OrderLine.product`` and ``User.orders``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from enum import Enum
from typing import Any, cast

import strawberry
from strawberry.types import Info

from archway.kernel.errors import InvalidInput
from archway.kernel.graphql.context import GraphQLContext
from archway.kernel.graphql.errors import argument
from archway.kernel.graphql.types import Long, Money, page_request
from archway.kernel.http.idempotency import KEY_PATTERN
from archway.kernel.money import Money as MoneyValue
from archway.kernel.pagination import Page
from archway.orders.domain import LineRequest
from archway.orders.domain import OrderLine as OrderLineValue
from archway.orders.queries import OrderQueries, OrderView, view_of
from archway.orders.report_queries import TOP_PRODUCTS_DEFAULT, TOP_PRODUCTS_MAX, ReportQueries
from archway.orders.service import OrdersService

ORDERS_OF_LOADER = "orders.of-customers"
_KEY = re.compile(KEY_PATTERN)
POLL_SECONDS = 2.0
"""How often a watcher looks again unwoken (a change applied by another process)."""
APPEAR_SECONDS = 2.0
"""How long a watcher waits for an order just placed to reach the read model."""


@strawberry.enum(description="pending → confirmed | rejected; pending or confirmed → cancelled.")
class OrderStatus(Enum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@strawberry.type
class OrderLineFields:
    """A line of an order as orders knows it (a copy of the product's sku, name and price at
    the time the order was placed)."""

    product_id: strawberry.ID
    sku: str
    name: str
    quantity: int
    unit_price: Money
    line_total: Money

    @classmethod
    def fields_of(cls, line: OrderLineValue) -> dict[str, Any]:
        return {"product_id": strawberry.ID(line.product_id), "sku": line.sku,
                "name": line.name, "quantity": line.quantity,
                "unit_price": Money.of(line.unit_price), "line_total": Money.of(line.total)}


@strawberry.type
class OrderFields:
    """An order as the read side (or a command's answer) shows it."""

    view: strawberry.Private[OrderView]
    id: strawberry.ID
    customer_id: strawberry.ID
    status: OrderStatus
    total: Money
    rejection_reason: str | None
    placed_at: str = strawberry.field(description="RFC 3339, UTC.")
    updated_at: str = strawberry.field(description="RFC 3339, UTC.")

    @classmethod
    def fields_of(cls, view: OrderView) -> dict[str, Any]:
        return {"view": view, "id": strawberry.ID(view.id),
                "customer_id": strawberry.ID(view.customer_id),
                "status": OrderStatus(view.status),
                "total": Money.of(MoneyValue(view.total, view.currency)),
                "rejection_reason": view.rejection_reason, "placed_at": view.placed_at,
                "updated_at": view.updated_at}


@strawberry.type(description="Units sold and revenue of one product (confirmed orders).")
class ProductSales:
    product_id: strawberry.ID
    units_sold: Long
    revenue: Money


@strawberry.input
class OrderLineInput:
    product_id: strawberry.ID
    quantity: int


@strawberry.input
class PlaceOrderInput:
    lines: list[OrderLineInput]


def _service(info: Info[GraphQLContext, Any]) -> OrdersService[Any]:
    return cast("OrdersService[Any]", info.context.services["orders"])


def _queries(info: Info[GraphQLContext, Any]) -> OrderQueries:
    return cast("OrderQueries", info.context.services["order_queries"])


def _reports(info: Info[GraphQLContext, Any]) -> ReportQueries:
    return cast("ReportQueries", info.context.services["report_queries"])


async def order(info: Info[GraphQLContext, Any], order_id: str) -> OrderView:
    return await _queries(info).get_order(info.context.caller, order_id)


async def orders(
    info: Info[GraphQLContext, Any], first: int | None, after: str | None
) -> Page[OrderView]:
    caller = info.context.caller
    return await _queries(info).list_orders(caller, page_request(first, after, cursor_arity=1))


async def orders_of(
    info: Info[GraphQLContext, Any], customer_id: str, first: int | None, after: str | None
) -> Page[OrderView]:
    """One customer's orders; the customers asked for in one tick are read in one query
    (per distinct ``first``/``after``)."""
    context = info.context
    page = page_request(first, after, cursor_arity=1)
    queries = _queries(info)

    async def load(customers: list[str]) -> list[Page[OrderView]]:
        found = await queries.orders_of(context.caller, customers, page)
        return [found[customer] for customer in customers]

    name = f"{ORDERS_OF_LOADER}:{page.limit}:{after}"
    return await context.loader(name, load).load(customer_id)


async def place_order(
    info: Info[GraphQLContext, Any], lines: Sequence[OrderLineInput], key: str | None
) -> OrderView:
    caller = info.context.caller
    if key is not None and not _KEY.fullmatch(key):
        raise InvalidInput.field("idempotency_key", "must be 1 to 255 visible ASCII characters")
    requested = [LineRequest(str(line.product_id), line.quantity) for line in lines]
    with argument("input"):
        done = await _service(info).place(caller, requested, key)
    return view_of(done.order)


async def cancel_order(info: Info[GraphQLContext, Any], order_id: str) -> OrderView:
    done = await _service(info).cancel(info.context.caller, order_id)
    return view_of(done.order)


async def top_products(info: Info[GraphQLContext, Any], limit: int | None) -> list[ProductSales]:
    caller = info.context.caller
    rows_wanted = TOP_PRODUCTS_DEFAULT if limit is None else limit
    if not 1 <= rows_wanted <= TOP_PRODUCTS_MAX:
        raise InvalidInput.field("limit", f"must be 1 to {TOP_PRODUCTS_MAX}")
    rows = await _reports(info).top_products(caller, rows_wanted)
    return [ProductSales(product_id=strawberry.ID(row.product_id), units_sold=Long(row.units_sold),
                         revenue=Money.of(row.revenue)) for row in rows]


async def order_updates(
    info: Info[GraphQLContext, Any], order_id: str, *, poll_seconds: float = POLL_SECONDS
) -> AsyncIterator[OrderView]:
    """The order's states from the read side's one watch (:meth:`OrderQueries.watch_order`,
    which gRPC's ``WatchOrder`` streams too), until it is rejected or cancelled: then the
    subscription completes. An order placed a moment ago is waited for (up to
    :data:`APPEAR_SECONDS`) before it is NOT_FOUND."""
    async for view in _queries(info).watch_order(
            info.context.caller, order_id, recheck_seconds=poll_seconds,
            appear_seconds=APPEAR_SECONDS):
        yield view


def order_cursor(view: OrderView) -> tuple[str]:
    return (view.id,)

"""The read side: answers come from the projections only, never from the write model.

A read model trails its commands by the time the relay takes to publish (milliseconds in one
process), so an order just placed may be briefly absent: clients that need it at once use the
command's answer, or send its ``Consistency-Token`` back (see :mod:`archway.orders.consistency`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import Connection, Row

from archway.kernel.auth.principal import Principal
from archway.kernel.clock import as_utc
from archway.kernel.db import UnitsOfWork
from archway.kernel.errors import InvalidInput, NotFound
from archway.kernel.ids import is_valid_id
from archway.kernel.money import Money
from archway.kernel.pagination import Page, PageRequest
from archway.orders.domain import Order, OrderLine, OrderStatus
from archway.orders.store import order_view

READ_SCOPE = "orders:read"


@dataclass(frozen=True, slots=True)
class OrderView:
    id: str
    customer_id: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    total: Money
    rejection_reason: str | None
    placed_at: datetime
    updated_at: datetime


def view_of(order: Order) -> OrderView:
    """A command's answer in the read side's shape, so both render alike."""
    return OrderView(
        order.id, order.customer_id, order.status, order.lines, order.total,
        order.rejection_reason, order.placed_at, order.updated_at)


class OrderQueries:
    def __init__(self, db: UnitsOfWork) -> None:
        self._db = db

    async def get_order(self, principal: Principal, order_id: str) -> OrderView:
        """The order's customer, or an admin (both with `orders:read`). Another customer's
        order is not found, exactly like one that does not exist."""
        principal.require_scope(READ_SCOPE)
        row = None
        if is_valid_id(order_id):
            row = await self._db.read(lambda conn: conn.execute(select(order_view).where(
                order_view.c.order_id == order_id)).first())
        if row is None or not (principal.is_admin or row.customer_id == principal.subject):
            raise NotFound("No such order.")
        return _view(row)

    async def list_orders(self, principal: Principal, page: PageRequest) -> Page[OrderView]:
        """Customers with `orders:read` see their own orders, admins everyone's; newest first."""
        principal.require_scope(READ_SCOPE)
        conditions: list[ColumnElement[bool]] = []
        if not principal.is_admin:
            conditions.append(order_view.c.customer_id == principal.subject)
        return await self._db.read(lambda conn: _page(conn, conditions, page))


def _page(
    conn: Connection, conditions: Sequence[ColumnElement[bool]], page: PageRequest
) -> Page[OrderView]:
    # Ids are UUIDv7: ordering by id is ordering by time placed, and a unique cursor key.
    query = select(order_view).where(*conditions).order_by(order_view.c.order_id.desc())
    if not page.wants_cursor:
        total = conn.execute(
            select(func.count()).select_from(order_view).where(*conditions)).scalar_one()
        rows = conn.execute(query.limit(page.limit).offset(page.offset)).all()
        return Page([_view(row) for row in rows], total=total)
    if page.after is not None:
        (last_id,) = page.after
        if not isinstance(last_id, str):
            raise InvalidInput.field("cursor", "is not a cursor this API returned")
        query = query.where(order_view.c.order_id < last_id)
    rows = conn.execute(query.limit(page.limit + 1)).all()
    items = [_view(row) for row in rows[: page.limit]]
    more = len(rows) > page.limit
    return Page(items, next_after=(items[-1].id,) if more else None)


def _view(row: Row) -> OrderView:
    lines = tuple(
        OrderLine(line["product_id"], line["sku"], line["name"], line["quantity"],
                  Money(line["unit_price"], row.currency))
        for line in orjson.loads(row.lines))
    return OrderView(
        id=row.order_id, customer_id=row.customer_id, status=OrderStatus(row.status),
        lines=lines, total=Money(row.total, row.currency),
        rejection_reason=row.rejection_reason, placed_at=as_utc(row.placed_at),
        updated_at=as_utc(row.updated_at))

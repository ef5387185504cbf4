"""The read side: answers come from the projections only, never from the write model.

A read model trails its commands by the time the relay takes to publish (milliseconds in one
process), so an order just placed may be briefly absent: clients that need it at once use the
command's answer, or send its ``Consistency-Token`` back (see :mod:`archway.orders.consistency`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import BigInteger, String, bindparam, cast, func, select, type_coerce
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import BindParameter

from archway.kernel.auth.principal import Principal
from archway.kernel.clock import as_utc, rfc3339
from archway.kernel.db import Database
from archway.kernel.errors import NotFound
from archway.kernel.events.cloudevent import Event, data_of
from archway.kernel.ids import is_valid_id
from archway.kernel.money import Money
from archway.kernel.pagination import Page, PageRequest, cursor_id
from archway.kernel.statements import DriverRead
from archway.orders.domain import Order, OrderLine, OrderStatus
from archway.orders.events import line_data
from archway.orders.projections import OrderChanges
from archway.orders.store import order_counts, order_view

READ_SCOPE = "orders:read"
FINAL_STATUSES = frozenset({OrderStatus.REJECTED.value, OrderStatus.CANCELLED.value})
WATCH_RECHECK_SECONDS = 5.0
"""How often a watch re-reads its order when no change came: a change applied by another
process (a separate read-model worker) reaches this one's watchers that way."""


class OrderView(NamedTuple):
    """An order as the read side answers it: plain values, ready to render. Amounts are minor
    units of ``currency``, times RFC 3339 in UTC (``...Z``), as every API version shows them.
    ``(id, version)`` names one state of the order: two views with the same pair are equal,
    which lets an adapter keep what it rendered (see ``orders.rest``). The lines stay JSON
    text until they are asked for, which such an adapter then rarely does."""

    id: str
    customer_id: str
    status: str
    currency: str
    total: int
    lines_json: str | bytes
    rejection_reason: str | None
    placed_at: str
    updated_at: str
    version: int

    @property
    def lines(self) -> list[OrderLine]:
        """The lines as the domain has them (each knows its total), from the stored JSON."""
        return [
            OrderLine(line["product_id"], line["sku"], line["name"], line["quantity"],
                      Money(line["unit_price"], self.currency))
            for line in orjson.loads(self.lines_json)]


def view_of(order: Order) -> OrderView:
    """A command's answer in the read side's shape, so both render alike."""
    return OrderView(
        order.id, order.customer_id, str(order.status), order.total.currency,
        order.total.amount, orjson.dumps([line_data(line) for line in order.lines]),
        order.rejection_reason, rfc3339(order.placed_at), rfc3339(order.updated_at),
        order.version)


class OrderQueries:
    """``changes``: the order view's changes as this process applies them (for watches)."""

    def __init__(self, db: Database, *, changes: OrderChanges | None = None) -> None:
        self._db = db
        self._changes = changes or OrderChanges()

    async def get_order(self, principal: Principal, order_id: str) -> OrderView:
        """The order's customer, or an admin (both with `orders:read`). Another customer's
        order is not found, exactly like one that does not exist."""
        principal.require_scope(READ_SCOPE)
        row = None
        if is_valid_id(order_id):
            rows = await self._db.fetch(_ONE, {"order_id": order_id})
            row = rows[0] if rows else None
        if row is None or not (principal.is_admin or row[1] == principal.subject):
            raise NotFound("No such order.")
        return _view(row)

    async def watch_order(
        self, principal: Principal, order_id: str, *,
        recheck_seconds: float = WATCH_RECHECK_SECONDS, appear_seconds: float = 0.0,
    ) -> AsyncIterator[OrderView]:
        """The order now, then the order after each change of its status, in order, until it
        is final (rejected or cancelled): then the iteration ends. Whoever may read the order
        (:meth:`get_order`) may watch it. Changes come from the order view as it applies them,
        every one even when they follow each other closely; without one for
        ``recheck_seconds`` the view is read again (changes applied by another process). An
        order the read model does not show yet (placed a moment ago) is waited for up to
        ``appear_seconds`` before it is NotFound."""
        with self._changes.watch(order_id) as arrivals:  # before the first read: none missed
            view = await self._appeared(principal, order_id, arrivals, appear_seconds)
            yield view
            while view.status not in FINAL_STATUSES:
                try:
                    data = data_of(await asyncio.wait_for(arrivals.get(), recheck_seconds))
                except TimeoutError:
                    latest = await self.get_order(principal, order_id)
                    if latest.version > view.version:
                        view = latest
                        yield view
                    continue
                if data["version"] <= view.version:  # applied before the first read
                    continue
                view = view._replace(
                    status=data["status"], version=data["version"],
                    updated_at=rfc3339(datetime.fromisoformat(data["at"])),
                    rejection_reason=data.get("reason", view.rejection_reason))
                yield view

    async def _appeared(
        self, principal: Principal, order_id: str, arrivals: asyncio.Queue[Event],
        appear_seconds: float,
    ) -> OrderView:
        deadline = asyncio.get_running_loop().time() + appear_seconds
        while True:
            try:
                return await self.get_order(principal, order_id)
            except NotFound:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise
                with contextlib.suppress(TimeoutError):  # its first change, or look again
                    await asyncio.wait_for(arrivals.get(), min(left, 0.1))

    async def list_orders(self, principal: Principal, page: PageRequest) -> Page[OrderView]:
        """Customers with `orders:read` see their own orders, admins everyone's; newest first."""
        principal.require_scope(READ_SCOPE)
        owner = None if principal.is_admin else principal.subject
        if page.wants_cursor:
            after = cursor_id(page.after[0]) if page.after is not None else None
            return await self._cursor_page(owner, page.limit, after)
        return await self._offset_page(owner, page.limit, page.offset or 0)

    async def _offset_page(self, owner: str | None, limit: int, offset: int) -> Page[OrderView]:
        query, count = _OFFSET_PAGES[owner is not None]
        rows = await self._db.fetch(query, {"owner": owner, "limit": limit, "offset": offset})
        if rows:
            return Page([_view(row) for row in rows], total=rows[0][-1])
        total = (await self._db.fetch(count, {"owner": owner}))[0][0] if offset else 0
        return Page([], total=total)

    async def _cursor_page(
        self, owner: str | None, limit: int, after: str | None
    ) -> Page[OrderView]:
        query = _CURSOR_PAGES[owner is not None, after is not None]
        rows = await self._db.fetch(query, {"owner": owner, "after": after, "limit": limit + 1})
        items = [_view(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items, next_after=(items[-1].id,) if more else None)

    async def orders_of(
        self, principal: Principal, customer_ids: Collection[str], page: PageRequest
    ) -> dict[str, Page[OrderView]]:
        """:meth:`list_orders` for each of many customers at once, in one query (what
        GraphQL's ``user.orders`` batches): a customer with `orders:read` sees only their own,
        an admin anyone's; a customer the caller may not see has an empty page."""
        principal.require_scope(READ_SCOPE)
        after = cursor_id(page.after[0]) if page.after is not None else None
        visible = sorted({customer for customer in customer_ids if is_valid_id(customer)
                          and (principal.is_admin or customer == principal.subject)})
        found = await self._db.read(
            lambda conn: _pages_of(conn, visible, page.limit, after)) if visible else {}
        return {customer: found.get(customer, Page([])) for customer in customer_ids}


# The statements are built once: a page is one query (plus the total alone past the last page),
# run on the driver (Database.fetch), its columns read as the driver gives them. Ids are UUIDv7,
# so ordering by id is ordering by time placed, and a unique cursor key.
_COLUMNS = (
    order_view.c.order_id, order_view.c.customer_id, order_view.c.status, order_view.c.currency,
    order_view.c.total, order_view.c.lines, order_view.c.rejection_reason,
    # SQLite's stored text is rewritten as RFC 3339 without parsing it (see _time).
    type_coerce(order_view.c.placed_at, String), type_coerce(order_view.c.updated_at, String),
    order_view.c.version,
)
_MINE = order_view.c.customer_id == bindparam("owner")
_NEWEST_FIRST = order_view.c.order_id.desc()
_LIMIT: BindParameter[int] = bindparam("limit")
_OFFSET: BindParameter[int] = bindparam("offset")


def _counted(mine: bool) -> tuple[DriverRead, DriverRead]:
    # The total is kept by the projection (orders_order_counts), not counted per page.
    if mine:
        kept = select(order_counts.c.orders).where(order_counts.c.customer_id == bindparam("owner"))
    else:
        kept = select(cast(func.sum(order_counts.c.orders), BigInteger))  # not numeric
    count = select(func.coalesce(kept.scalar_subquery(), 0))
    page = select(*_COLUMNS, count.scalar_subquery())
    if mine:
        page = page.where(_MINE)
    return DriverRead(page.order_by(_NEWEST_FIRST).limit(_LIMIT).offset(_OFFSET)), \
        DriverRead(count)


def _after(mine: bool, after: bool) -> DriverRead:
    query = select(*_COLUMNS)
    if mine:
        query = query.where(_MINE)
    if after:
        query = query.where(order_view.c.order_id < bindparam("after"))
    return DriverRead(query.order_by(_NEWEST_FIRST).limit(_LIMIT))


_ONE = DriverRead(select(*_COLUMNS).where(order_view.c.order_id == bindparam("order_id")))
_OFFSET_PAGES = {mine: _counted(mine) for mine in (False, True)}
_CURSOR_PAGES = {(mine, after): _after(mine, after) for mine in (False, True)
                 for after in (False, True)}


def _pages_of(
    conn: Connection, customers: list[str], limit: int, after: str | None
) -> dict[str, Page[OrderView]]:
    ranked = select(*_COLUMNS, func.row_number().over(
        partition_by=order_view.c.customer_id, order_by=_NEWEST_FIRST).label("rank")).where(
        order_view.c.customer_id.in_(bindparam("customers", expanding=True)))
    if after is not None:
        ranked = ranked.where(order_view.c.order_id < bindparam("after"))
    inner = ranked.subquery()
    query = select(*inner.c).where(inner.c.rank <= limit + 1).order_by(
        inner.c[1], inner.c.rank)
    rows = conn.execute(query, {"customers": customers, "after": after}).all()
    grouped: dict[str, list[OrderView]] = {}
    for row in rows:
        grouped.setdefault(row[1], []).append(_view(row))
    return {customer: Page(views[:limit], next_after=(views[limit - 1].id,)
                           if len(views) > limit else None)
            for customer, views in grouped.items()}


def _view(row: Row[*tuple[Any, ...]]) -> OrderView:
    return OrderView(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], _time(row[7]), _time(row[8]),
        row[9])


def _time(stored: str | datetime) -> str:
    """A stored time in RFC 3339, exactly as :func:`rfc3339` writes it. SQLite gives the text
    SQLAlchemy stored, ``2024-05-01 12:00:00.250000`` (UTC): rewritten, not parsed; other
    drivers give datetimes (asyncpg's in UTC, formatted without converting: two conversions per
    time were a sixth of a page's time on PostgreSQL)."""
    if isinstance(stored, str):
        if len(stored) == 26 and stored[10] == " " and stored[19] == ".":
            if stored.endswith(".000000"):
                return f"{stored[:10]}T{stored[11:19]}Z"
            return f"{stored[:10]}T{stored[11:]}Z"
        stored = datetime.fromisoformat(stored)
    if stored.tzinfo is UTC:  # asyncpg's: its ISO form ends in +00:00, no conversion needed
        return f"{stored.isoformat()[:-6]}Z"
    return rfc3339(as_utc(stored))

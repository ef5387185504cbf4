"""Orders persistence: the write model, the outbox and inbox, and the read models' tables.

The write model (``orders_orders``, ``orders_order_lines``) is read only by commands; queries
read the projection tables (``orders_order_view``, ``orders_customer_summary``,
``orders_product_sales``), which only projections write. All of them
live in ``orders_metadata`` so the context moves to its own database in one piece.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from archway.kernel.clock import as_utc
from archway.kernel.events.cloudevent import Event
from archway.kernel.events.outbox import append
from archway.kernel.events.tables import dead_letter_table, inbox_table, outbox_table
from archway.kernel.money import Money
from archway.kernel.statements import DriverRead, DriverWrite
from archway.orders.domain import Order, OrderLine, OrderStatus

orders_metadata = MetaData()

orders = Table(
    "orders_orders",
    orders_metadata,
    Column("id", String(36), primary_key=True),
    Column("customer_id", String(36), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("rejection_reason", String(500), nullable=True),
    Column("version", Integer, nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

order_lines = Table(
    "orders_order_lines",
    orders_metadata,
    Column("order_id", String(36), ForeignKey("orders_orders.id", ondelete="CASCADE"),
           primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("product_id", String(36), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", BigInteger, nullable=False),
)

# The HTTP layer's Idempotency-Key store answers retries, but it records the answer in a
# transaction of its own after the order's: a process that dies in between would let a late
# retry place the order again. The key is kept with the order, atomically, so it cannot.
placement_keys = Table(
    "orders_placement_keys",
    orders_metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("idempotency_key", String(255), primary_key=True),
    Column("order_id", String(36), ForeignKey("orders_orders.id"), nullable=False),
)

orders_outbox = outbox_table(orders_metadata, "orders")
orders_inbox = inbox_table(orders_metadata, "orders")
orders_dead_letters = dead_letter_table(orders_metadata, "orders")
# Commands answer with the position of their order's last event (a consistency token), and the
# reports look up an order's ``order_placed`` in the log: both find events by order id.
Index("ix_orders_outbox_subject", orders_outbox.c.subject, orders_outbox.c.position)

# -- read models (written by projections.py only) ------------------------------------------

order_view = Table(
    "orders_order_view",
    orders_metadata,
    Column("order_id", String(36), primary_key=True),
    Column("customer_id", String(36), nullable=False),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("lines", Text, nullable=False),  # JSON: the lines as order_placed carried them
    Column("rejection_reason", String(500), nullable=True),
    Column("version", Integer, nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_orders_order_view_customer_id", "customer_id", "order_id"),
)

# How many rows of order_view each customer has, kept with them: the total of an orders page
# is read here, not counted from order_view (a count reads every one of the customer's rows,
# and on PostgreSQL their dead versions too).
order_counts = Table(
    "orders_order_counts",
    orders_metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("orders", BigInteger, nullable=False),
)

# Rows are per currency: amounts in different currencies are never added together.
customer_summary = Table(
    "orders_customer_summary",
    orders_metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("orders_count", Integer, nullable=False),
    Column("total_spent", BigInteger, nullable=False),
)

product_sales = Table(
    "orders_product_sales",
    orders_metadata,
    Column("product_id", String(36), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("units_sold", BigInteger, nullable=False),
    Column("revenue", BigInteger, nullable=False),
    Index("ix_orders_product_sales_units_sold", "units_sold"),
)


# Built once: every order placed and every saga step runs several of these.
_INSERT_ORDER = DriverWrite(insert(orders))
_INSERT_LINES = DriverWrite(insert(order_lines))
_INSERT_KEY = DriverWrite(insert(placement_keys))
_PLACED_WITH = DriverRead(select(placement_keys.c.order_id).where(
    placement_keys.c.customer_id == bindparam("customer_id"),
    placement_keys.c.idempotency_key == bindparam("idempotency_key")))
_SELECT_ORDER = select(orders).where(orders.c.id == bindparam("order_id"))
_ORDER = DriverRead(_SELECT_ORDER)
_ORDER_FOR_UPDATE = DriverRead(_SELECT_ORDER.with_for_update())
_LINES = DriverRead(select(order_lines).where(
    order_lines.c.order_id == bindparam("order_id")).order_by(order_lines.c.line_no))
_SOME_ORDERS = select(orders).where(
    orders.c.id.in_(bindparam("order_ids", expanding=True))).order_by(orders.c.id)
_ORDERS, _ORDERS_LOCKED = _SOME_ORDERS, _SOME_ORDERS.with_for_update()
_LINES_OF = select(order_lines).where(
    order_lines.c.order_id.in_(bindparam("order_ids", expanding=True))).order_by(
    order_lines.c.order_id, order_lines.c.line_no)
_SAVE = DriverWrite(update(orders).where(
    orders.c.id == bindparam("order_id"), orders.c.version == bindparam("previous_version"),
).values(status=bindparam("new_status"), rejection_reason=bindparam("new_reason"),
         version=bindparam("new_version"), updated_at=bindparam("new_updated_at")))
_LAST_POSITION = DriverRead(select(func.max(orders_outbox.c.position)).where(
    orders_outbox.c.subject == bindparam("order_id")))


class OrderRepository:
    """Orders and their lines, and the events about them, on one connection (one
    transaction)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, order: Order) -> None:
        _INSERT_ORDER.execute(self._conn, {
            "id": order.id, "customer_id": order.customer_id, "status": str(order.status),
            "currency": order.total.currency, "rejection_reason": order.rejection_reason,
            "version": order.version, "placed_at": order.placed_at,
            "updated_at": order.updated_at})
        _INSERT_LINES.execute(self._conn, [
            {"order_id": order.id, "line_no": number, "product_id": line.product_id,
             "sku": line.sku, "name": line.name, "quantity": line.quantity,
             "unit_price": line.unit_price.amount}
            for number, line in enumerate(order.lines)
        ])

    def placed_with(self, customer_id: str, key: str) -> str | None:
        """The id of the order this customer placed with this Idempotency-Key, if any."""
        return _PLACED_WITH.scalar(  # type: ignore[no-any-return]
            self._conn, {"customer_id": customer_id, "idempotency_key": key})

    def remember_key(self, order: Order, key: str) -> None:
        _INSERT_KEY.execute(self._conn, {
            "customer_id": order.customer_id, "idempotency_key": key, "order_id": order.id})

    def get(self, order_id: str, *, lock: bool = False) -> Order | None:
        row = (_ORDER_FOR_UPDATE if lock else _ORDER).first(self._conn, {"order_id": order_id})
        if row is None:
            return None
        return _order(row, _LINES.all(self._conn, {"order_id": order_id}))

    def get_many(self, order_ids: Sequence[str], *, lock: bool = False) -> dict[str, Order]:
        """The orders found among ``order_ids``, in two statements (locked in id order, so two
        transactions locking some of the same orders cannot deadlock)."""
        if not order_ids:
            return {}
        ids = sorted(set(order_ids))
        found = _ORDERS_LOCKED if lock else _ORDERS
        rows = self._conn.execute(found, {"order_ids": ids}).all()
        lines: dict[str, list[Any]] = {}
        for line in self._conn.execute(_LINES_OF, {"order_ids": ids}):
            lines.setdefault(line.order_id, []).append(line)
        return {row.id: _order(row, lines.get(row.id, [])) for row in rows}

    def save_many(self, changed: Sequence[tuple[Order, int]]) -> bool:
        """:meth:`save` for each ``(order, previous_version)``, as one statement. False if the
        driver says a row was missed (asyncpg does not count the rows of such a statement)."""
        written = _SAVE.execute(self._conn, [_saved_state(order, previous)
                                             for order, previous in changed])
        return written < 0 or written == len(changed)

    def save(self, order: Order, previous_version: int) -> bool:
        """Write the order's state if it is still at ``previous_version``."""
        written = _SAVE.execute(self._conn, _saved_state(order, previous_version))
        return bool(written)

    def append(self, events: Iterable[Event]) -> None:
        """Append integration events to the orders outbox, committing with the order."""
        append(self._conn, orders_outbox, events)

    def last_position(self, order_id: str) -> int:
        return last_position(self._conn, order_id)


def _saved_state(order: Order, previous_version: int) -> dict[str, Any]:
    return {
        "order_id": order.id, "previous_version": previous_version,
        "new_status": str(order.status), "new_reason": order.rejection_reason,
        "new_version": order.version, "new_updated_at": order.updated_at}


def last_position(conn: Connection, order_id: str) -> int:
    """The outbox position of the newest event about ``order_id`` (0 if none): what a command
    hands back as its consistency token, read in the command's own transaction."""
    return int(_LAST_POSITION.scalar(conn, {"order_id": order_id}) or 0)


def _order(row: Any, lines: list[Any]) -> Order:
    return Order(
        id=row.id, customer_id=row.customer_id, status=OrderStatus(row.status),
        lines=tuple(
            OrderLine(line.product_id, line.sku, line.name, line.quantity,
                      Money(line.unit_price, row.currency))
            for line in lines),
        placed_at=as_utc(row.placed_at), updated_at=as_utc(row.updated_at),
        rejection_reason=row.rejection_reason, version=row.version,
    )

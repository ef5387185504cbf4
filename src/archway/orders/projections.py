"""Read models, built only from the orders' integration events.

Projections subscribe to the bus like any other consumer, so they see exactly what another
service would see, and can be rebuilt from the event log (the orders outbox keeps every event).
Each one records the events it applied in the orders inbox, in the same transaction as its
effect (it is a :class:`~archway.kernel.events.inbox.Consumer`), so an event delivered twice
is applied once: that is what keeps counters such as the reports right. The order view also
only moves a row forward (``version < event.version``), which keeps it right even outside the
inbox.

Every applied event wakes :class:`~archway.orders.consistency.ReadYourWrites`, so a query that
waits for a command's consistency token is answered as soon as its projections caught up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from archway.kernel.db import UnitsOfWork
from archway.kernel.events.cloudevent import Event, data_of, from_json, handling
from archway.kernel.events.inbox import Consumer
from archway.kernel.statements import DriverWrite
from archway.orders.counters import add_all
from archway.orders.events import ORDER_EVENT_TYPES, ORDER_PLACED, ORDER_REJECTED
from archway.orders.store import order_counts, order_view, orders_inbox, orders_outbox

ORDER_VIEW_CONSUMER = "orders.order_view"


class Projection:
    """One read model: its consumer name, its tables and how one event changes them."""

    consumer: str = ""
    tables: tuple[Table, ...] = ()

    def __init__(
        self,
        db: UnitsOfWork,
        *,
        on_applied: Callable[[], None] = lambda: None,
        on_events: Callable[[Sequence[Event]], None] = lambda applied: None,
    ) -> None:
        """``on_applied`` after each commit; ``on_events`` then too, with the events applied
        (the order view's tell watchers which orders changed: ``orders.updates``)."""
        self._db = db
        self._on_applied = on_applied

        def after_commit(applied: Sequence[Event]) -> None:
            on_applied()
            on_events(applied)

        self.handle = Consumer(db, orders_inbox, self.consumer, self.apply,
                               apply_batch=self.apply_batch, after_commit=after_commit)
        """The bus handler: applies each event once, however often it is delivered."""

    def apply(self, conn: Connection, event: Event) -> None:
        raise NotImplementedError

    def apply_batch(self, conn: Connection, events: Sequence[Event]) -> None:
        """Apply ``events`` in order, as :meth:`apply` one by one would; projections override
        it with a few statements for the whole batch (one round trip each on PostgreSQL)."""
        for event in events:
            with handling(event):
                self.apply(conn, event)

    async def rebuild(self) -> int:
        """Empty the read model and replay the whole orders log, in one transaction; returns
        how many events were replayed."""
        replayed = await self._db.write(lambda conn: replay(conn, self))
        self._on_applied()
        return replayed


def replay(conn: Connection, projection: Projection) -> int:
    """Rebuild ``projection`` from every committed event, recording each in the inbox.

    Every committed outbox row is replayed, published or not: an event still waiting for the
    relay is then skipped by the inbox when it arrives. On PostgreSQL the inbox is locked for
    the rebuild's transaction, so a live delivery either committed before the rebuild (and its
    event is in the log the rebuild reads) or waits for it and finds its event recorded; none
    is lost or applied twice. SQLite serializes writers anyway.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"LOCK TABLE {orders_inbox.name} IN EXCLUSIVE MODE")
    for table in projection.tables:
        conn.execute(delete(table))
    conn.execute(delete(orders_inbox).where(orders_inbox.c.consumer == projection.consumer))
    rows = conn.execute(select(orders_outbox.c.payload).where(
        orders_outbox.c.event_type.in_(ORDER_EVENT_TYPES)).order_by(orders_outbox.c.position))
    now, applied = datetime.now(UTC), []
    for (payload,) in rows.all():
        event = from_json(payload)
        projection.apply(conn, event)
        applied.append({
            "consumer": projection.consumer, "event_id": event.get_id(),
            "event_type": event.get_type(), "processed_at": now})
    if applied:
        conn.execute(insert(orders_inbox), applied)
    return len(applied)


class OrderViewProjection(Projection):
    """``orders_order_view``: one row per order, as the order's owner and admins read it; and
    ``orders_order_counts``, how many rows each customer has there."""

    consumer = ORDER_VIEW_CONSUMER
    tables = (order_view, order_counts)

    def apply(self, conn: Connection, event: Event) -> None:
        apply_to_order_view(conn, event)

    def apply_batch(self, conn: Connection, events: Sequence[Event]) -> None:
        apply_batch_to_order_view(conn, events)


# Built once: two of these run for every order placed and settled.
_VIEW_EXISTS = select(order_view.c.order_id).where(order_view.c.order_id == bindparam("b_order"))
_VIEW_INSERT = DriverWrite(insert(order_view))
_VIEW_MOVING = update(order_view).where(
    order_view.c.order_id == bindparam("b_order"), order_view.c.version < bindparam("b_version"),
).values(status=bindparam("b_status"), version=bindparam("b_version"),
         updated_at=bindparam("b_updated_at"))
_VIEW_MOVE = DriverWrite(_VIEW_MOVING)
_VIEW_REJECT = DriverWrite(_VIEW_MOVING.values(rejection_reason=bindparam("b_reason")))


def apply_to_order_view(conn: Connection, event: Event) -> None:
    data = data_of(event)
    if event.get_type() == ORDER_PLACED:
        if conn.execute(_VIEW_EXISTS, {"b_order": data["order_id"]}).first() is None:
            _VIEW_INSERT.execute(conn, _placed_row(data))
            _count(conn, [data["customer_id"]])
        return
    statement, changes = _move(event)
    statement.execute(conn, changes)


_VIEWS_EXISTING = select(order_view.c.order_id).where(
    order_view.c.order_id.in_(bindparam("b_orders", expanding=True)))


def apply_batch_to_order_view(conn: Connection, events: Sequence[Event]) -> None:
    """:func:`apply_to_order_view` for each event, in a few statements: the new rows in one
    multi-row insert, then the moves in event order, consecutive ones of a kind together (an
    order's moves all come after its ``order_placed``, so inserting first changes nothing)."""
    placed = [data_of(event) for event in events if event.get_type() == ORDER_PLACED]
    if placed:
        known = set(conn.execute(
            _VIEWS_EXISTING, {"b_orders": [data["order_id"] for data in placed]}).scalars())
        rows = []
        for data in placed:
            if data["order_id"] not in known:
                known.add(data["order_id"])
                rows.append(_placed_row(data))
        if rows:
            _VIEW_INSERT.execute(conn, rows)
            _count(conn, [row["customer_id"] for row in rows])
    run: list[dict[str, Any]] = []
    run_statement: DriverWrite | None = None
    for event in events:
        if event.get_type() == ORDER_PLACED:
            continue
        statement, changes = _move(event)
        if statement is not run_statement and run:
            run_statement.execute(conn, run)  # type: ignore[union-attr]
            run = []
        run_statement = statement
        run.append(changes)
    if run:
        run_statement.execute(conn, run)  # type: ignore[union-attr]


def _count(conn: Connection, customers: list[str]) -> None:
    """One more row in the view for each of ``customers`` (a customer may come twice)."""
    add_all(conn, order_counts, [((("customer_id", customer),), {"orders": 1})
                                 for customer in customers])


def _move(event: Event) -> tuple[DriverWrite, dict[str, Any]]:
    """The update an event other than ``order_placed`` makes, and its parameters."""
    data = data_of(event)
    changes: dict[str, Any] = {
        "b_order": data["order_id"], "b_status": data["status"], "b_version": data["version"],
        "b_updated_at": _time(data["at"]),
    }
    if event.get_type() == ORDER_REJECTED:
        changes["b_reason"] = data.get("reason")
        return _VIEW_REJECT, changes
    return _VIEW_MOVE, changes


def _placed_row(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": data["order_id"], "customer_id": data["customer_id"],
        "status": data["status"], "currency": data["currency"], "total": data["total"],
        "lines": orjson.dumps(data["lines"]).decode(), "rejection_reason": None,
        "version": data["version"], "placed_at": _time(data["placed_at"]),
        "updated_at": _time(data["at"]),
    }


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)

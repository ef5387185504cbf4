"""Read models, built only from the orders' integration events.

Projections subscribe to the bus like any other consumer, so they see exactly what another
service would see, and can be rebuilt from the event log (the orders outbox keeps published
events). Each event carries the order's ``version`` after the change: a row only moves forward,
which keeps a projection right even if an event were delivered again outside the inbox
(a rebuild, a second relay).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from archway.kernel.db import UnitsOfWork
from archway.kernel.events.cloudevent import Event, data_of, from_json
from archway.kernel.events.inbox import consume_once
from archway.orders.events import ORDER_PLACED, ORDER_REJECTED
from archway.orders.store import order_view, orders_inbox, orders_outbox

ORDER_VIEW_CONSUMER = "orders.order_view"


class OrderViewProjection:
    """``orders_order_view``: one row per order, as the order's owner and admins read it."""

    def __init__(self, db: UnitsOfWork) -> None:
        self._db = db

    async def handle(self, event: Event) -> None:
        await consume_once(
            self._db, orders_inbox, ORDER_VIEW_CONSUMER, event,
            lambda conn: apply_to_order_view(conn, event))

    async def rebuild(self) -> int:
        """Drop the read model and replay every event in the orders' log; returns how many."""
        return await self._db.write(rebuild_order_view)


def apply_to_order_view(conn: Connection, event: Event) -> None:
    data = data_of(event)
    if event.get_type() == ORDER_PLACED:
        exists = conn.execute(select(order_view.c.order_id).where(
            order_view.c.order_id == data["order_id"])).first()
        if exists is None:
            conn.execute(insert(order_view).values(**_placed_row(data)))
        return
    changes: dict[str, Any] = {
        "status": data["status"], "version": data["version"], "updated_at": _time(data["at"]),
    }
    if event.get_type() == ORDER_REJECTED:
        changes["rejection_reason"] = data.get("reason")
    conn.execute(update(order_view).where(
        order_view.c.order_id == data["order_id"], order_view.c.version < data["version"],
    ).values(**changes))


def rebuild_order_view(conn: Connection) -> int:
    conn.execute(delete(order_view))
    conn.execute(delete(orders_inbox).where(orders_inbox.c.consumer == ORDER_VIEW_CONSUMER))
    replayed = 0
    for (payload,) in conn.execute(select(orders_outbox.c.payload).order_by(
            orders_outbox.c.position)):
        apply_to_order_view(conn, from_json(payload))
        replayed += 1
    return replayed


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

"""The catalog's part in the order saga: reserve stock for placed orders, release it for
cancelled ones, and say what happened through the catalog's own outbox.

It reads the orders' integration events by their published contract (type names and data
fields are spelled out here; no orders code is imported) and answers with
``archway.catalog.stock_reserved.v1`` or ``archway.catalog.stock_rejected.v1`` (with a reason).

Exactly one answer per order, even when an event comes twice: the stock effect is idempotent
per order in :meth:`CatalogService.reserve` (a second ask replays the first outcome and holds
nothing more), and the answer is written to the outbox together with the inbox row, in one
transaction. A crash between the two transactions is healed by redelivery: the reserve replays
and the answer is written then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from archway.catalog.event_tables import catalog_inbox, catalog_outbox
from archway.catalog.service import CatalogService
from archway.kernel.db import UnitsOfWork
from archway.kernel.events.cloudevent import Event, data_of, make_event
from archway.kernel.events.inbox import consume_once, seen
from archway.kernel.events.outbox import append

SOURCE = "/archway/catalog"
STOCK_RESERVED = "archway.catalog.stock_reserved.v1"
STOCK_REJECTED = "archway.catalog.stock_rejected.v1"
# Consumed from orders (its published contract).
ORDER_PLACED = "archway.orders.order_placed.v1"
ORDER_CANCELLED = "archway.orders.order_cancelled.v1"

RESERVATIONS_CONSUMER = "catalog.reservations"


class StockReservations:
    def __init__(
        self,
        db: UnitsOfWork,
        service: CatalogService,
        *,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._service = service
        self._on_commit = on_commit

    async def on_order_placed(self, event: Event) -> None:
        """Hold every line's stock or none, then answer reserved or rejected (with a reason)."""
        if await self._already_handled(event):
            return
        data = data_of(event)
        order_id = str(data["order_id"])
        lines = [(str(line["product_id"]), int(line["quantity"])) for line in data["lines"]]
        outcome = await self._service.reserve(order_id, lines)
        answer: dict[str, Any] = {"order_id": order_id}
        if outcome.accepted:
            answer_type = STOCK_RESERVED
            answer["lines"] = [{"product_id": p, "quantity": q} for p, q in lines]
        else:
            answer_type = STOCK_REJECTED
            answer["reason"] = outcome.reason or "stock could not be reserved"
        reply = make_event(answer_type, SOURCE, order_id, answer)

        def record(conn: Connection) -> None:
            append(conn, catalog_outbox, [reply])

        if await consume_once(self._db, catalog_inbox, RESERVATIONS_CONSUMER, event, record):
            self._on_commit()

    async def on_order_cancelled(self, event: Event) -> None:
        """Give back what the order holds (nothing if it held nothing). A cancel that overtakes
        its reserve makes that reserve hold nothing, so stock is never held for it."""
        if await self._already_handled(event):
            return
        await self._service.release(str(data_of(event)["order_id"]))
        await consume_once(
            self._db, catalog_inbox, RESERVATIONS_CONSUMER, event, lambda conn: None)

    async def _already_handled(self, event: Event) -> bool:
        event_id = event.get_id()
        return await self._db.read(
            lambda conn: seen(conn, catalog_inbox, RESERVATIONS_CONSUMER, event_id))

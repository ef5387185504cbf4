"""The catalog's part in the order saga: reserve stock for placed orders, release it for
cancelled ones, and say what happened through the catalog's own outbox.

It reads the orders' integration events by their published contract (type names and data
fields are spelled out here; no orders code is imported) and answers with
``archway.catalog.stock_reserved.v1`` or ``archway.catalog.stock_rejected.v1`` (with a reason).

Exactly one answer per order, even when an event comes twice: the stock effect, the answer in
the outbox and the inbox row commit in one transaction (a batch of events shares it; see
:class:`~archway.kernel.events.inbox.Consumer`), and the stock effect is idempotent per order
in :meth:`CatalogService.reserve_within` as well (a second ask replays the first outcome and
holds nothing more).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from archway.catalog.event_tables import catalog_inbox, catalog_outbox
from archway.catalog.service import CatalogService
from archway.kernel.db import UnitsOfWork
from archway.kernel.events.cloudevent import Event, data_of, make_event
from archway.kernel.events.inbox import Consumer
from archway.kernel.events.outbox import append

SOURCE = "/archway/catalog"
STOCK_RESERVED = "archway.catalog.stock_reserved.v1"
STOCK_REJECTED = "archway.catalog.stock_rejected.v1"
# Consumed from orders (its published contract).
ORDER_PLACED = "archway.orders.order_placed.v1"
ORDER_CANCELLED = "archway.orders.order_cancelled.v1"
CONSUMED = (ORDER_PLACED, ORDER_CANCELLED)

RESERVATIONS_CONSUMER = "catalog.reservations"


class StockReservations:
    """The consumer ``catalog.reservations``: subscribe :attr:`consumer` to :data:`CONSUMED`."""

    def __init__(
        self,
        db: UnitsOfWork,
        service: CatalogService,
        *,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._service = service
        self._on_commit = on_commit
        self.consumer = Consumer(
            db, catalog_inbox, RESERVATIONS_CONSUMER, self._apply, after_commit=self._committed)

    async def on_order_placed(self, event: Event) -> None:
        """Hold every line's stock or none, then answer reserved or rejected (with a reason)."""
        await self.consumer.one(event)

    async def on_order_cancelled(self, event: Event) -> None:
        """Give back what the order holds (nothing if it held nothing). A cancel that overtakes
        its reserve makes that reserve hold nothing, so stock is never held for it."""
        await self.consumer.one(event)

    def _apply(self, conn: Connection, event: Event) -> None:
        data = data_of(event)
        order_id = str(data["order_id"])
        if event.get_type() == ORDER_CANCELLED:
            self._service.release_within(conn, order_id)
            return
        lines = [(str(line["product_id"]), int(line["quantity"])) for line in data["lines"]]
        outcome = self._service.reserve_within(conn, order_id, lines)
        answer: dict[str, Any] = {"order_id": order_id}
        if outcome.accepted:
            answer_type = STOCK_RESERVED
            answer["lines"] = [{"product_id": p, "quantity": q} for p, q in lines]
        else:
            answer_type = STOCK_REJECTED
            answer["reason"] = outcome.reason or "stock could not be reserved"
        append(conn, catalog_outbox, [make_event(answer_type, SOURCE, order_id, answer)])

    def _committed(self, applied: Sequence[Event]) -> None:
        if any(event.get_type() == ORDER_CANCELLED for event in applied):
            self._service.forget_stock(None)  # what a cancel gave back is not in its event
        else:
            self._service.forget_stock({str(line["product_id"]) for event in applied
                                        for line in data_of(event)["lines"]})
        if any(event.get_type() == ORDER_PLACED for event in applied):
            self._on_commit()

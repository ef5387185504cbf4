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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from archway.catalog.domain import ReservationOutcome
from archway.catalog.service import CatalogService
from archway.catalog.store import catalog_inbox, catalog_outbox
from archway.kernel.db import UnitsOfWork
from archway.kernel.events.cloudevent import Event, data_of, handling, make_event
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
        service: CatalogService[Any],
        *,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._service = service
        self._on_commit = on_commit
        self.consumer = Consumer(
            db, catalog_inbox, RESERVATIONS_CONSUMER, self._apply,
            apply_batch=self._apply_batch, after_commit=self._committed)

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
        lines = _lines(data)
        outcome = self._service.reserve_within(conn, order_id, lines)
        append(conn, catalog_outbox, [_answer(outcome, lines)])

    def _apply_batch(self, conn: Connection, events: Sequence[Event]) -> None:
        """In order: each run of placed orders reserved together (see
        :meth:`CatalogService.reserve_all_within`), a cancellation on its own. One event (the
        consumer narrowing a failed batch) goes the way of :meth:`_apply`, which answers as a
        concurrent recording of the same order did."""
        if len(events) == 1:
            with handling(events[0]):
                self._apply(conn, events[0])
            return
        run: list[Event] = []
        for event in [*events, None]:
            if event is not None and event.get_type() == ORDER_PLACED:
                run.append(event)
                continue
            if run:
                self._reserve_run(conn, run)
                run = []
            if event is not None:
                with handling(event):
                    self._apply(conn, event)

    def _reserve_run(self, conn: Connection, placed: Sequence[Event]) -> None:
        orders = [(str(data["order_id"]), _lines(data)) for data in map(data_of, placed)]
        outcomes = self._service.reserve_all_within(conn, orders)
        answers = []
        for event, (_, lines), outcome in zip(placed, orders, outcomes, strict=True):
            with handling(event):  # each answer joins its order's trace
                answers.append(_answer(outcome, lines))
        append(conn, catalog_outbox, answers)

    def _committed(self, applied: Sequence[Event]) -> None:
        if any(event.get_type() == ORDER_CANCELLED for event in applied):
            self._service.forget_stock(None)  # what a cancel gave back is not in its event
        else:
            self._service.forget_stock({str(line["product_id"]) for event in applied
                                        for line in data_of(event)["lines"]})
        if any(event.get_type() == ORDER_PLACED for event in applied):
            self._on_commit()


def _lines(data: Mapping[str, Any]) -> list[tuple[str, int]]:
    return [(str(line["product_id"]), int(line["quantity"])) for line in data["lines"]]


def _answer(outcome: ReservationOutcome, lines: Sequence[tuple[str, int]]) -> Event:
    """``stock_reserved`` (with the lines held) or ``stock_rejected`` (with the reason)."""
    answer: dict[str, Any] = {"order_id": outcome.order_id}
    if outcome.accepted:
        answer_type = STOCK_RESERVED
        answer["lines"] = [{"product_id": p, "quantity": q} for p, q in lines]
    else:
        answer_type = STOCK_REJECTED
        answer["reason"] = outcome.reason or "stock could not be reserved"
    return make_event(answer_type, SOURCE, outcome.order_id, answer)

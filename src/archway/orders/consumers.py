"""The orders' part in the order saga: the catalog's answers (stock reserved or rejected)
decide each pending order, through the orders' own inbox.

The answers are read by the catalog's published contract (:data:`SAGA_EVENTS`, named in
``orders.events``); the decision itself is the service's
(:meth:`~archway.orders.service.OrdersService.apply_stock_answers_within`). The inbox row, the
changed orders and the events they cause commit in one transaction (a batch of answers shares
it; see :class:`~archway.kernel.events.inbox.Consumer`), so an answer delivered twice decides
its order once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.engine import Connection

from archway.kernel.db import UnitsOfWork
from archway.kernel.events.cloudevent import Event
from archway.kernel.events.inbox import Consumer
from archway.orders.events import STOCK_REJECTED, STOCK_RESERVED
from archway.orders.service import OrdersService
from archway.orders.store import orders_inbox

SAGA_CONSUMER = "orders.saga"
SAGA_EVENTS = (STOCK_RESERVED, STOCK_REJECTED)


class OrderSaga:
    """The consumer ``orders.saga``: subscribe :attr:`consumer` to :data:`SAGA_EVENTS`. Its
    inbox is a table, so it runs over the SQL unit of work (the service's tests over fakes call
    :meth:`OrdersService.apply_stock_answers_within` directly)."""

    def __init__(
        self,
        db: UnitsOfWork,
        service: OrdersService[Connection],
        *,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._service = service
        self._on_commit = on_commit
        self.consumer = Consumer(
            db, orders_inbox, SAGA_CONSUMER, self._react,
            apply_batch=self._react_to_all, after_commit=self._committed)

    async def on_stock_reserved(self, event: Event) -> None:
        """The catalog holds every line: a pending order is confirmed."""
        await self.consumer.one(event)

    async def on_stock_rejected(self, event: Event) -> None:
        """The catalog could not hold every line: a pending order is rejected with its reason."""
        await self.consumer.one(event)

    def _react(self, conn: Connection, event: Event) -> None:
        """One answer of the catalog, in the consumer's transaction."""
        self._service.apply_stock_answers_within(conn, [event])

    def _react_to_all(self, conn: Connection, events: Sequence[Event]) -> None:
        """The catalog's answers in order, in the consumer's transaction."""
        self._service.apply_stock_answers_within(conn, events)

    def _committed(self, _applied: Sequence[Event]) -> None:
        self._on_commit()

"""Orders use cases (the write side): place and cancel, and the saga's decisions on the
catalog's stock answers (applied by ``orders.consumers.OrderSaga``).

Each command changes the write model and appends its integration events to the orders outbox
in one transaction, then nudges the relay. The catalog is reached only through its client
port: synchronously for prices when an order is placed, asynchronously (events) for stock.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol

from archway.catalog.client import CatalogClient
from archway.kernel.auth.principal import Principal
from archway.kernel.clock import utc_now
from archway.kernel.errors import Conflict, InvalidInput, NotFound, Unavailable
from archway.kernel.events.cloudevent import Event, data_of, handling
from archway.kernel.ids import is_valid_id, new_id
from archway.kernel.uow import Tx, UnitsOfWork
from archway.orders.domain import LineRequest, Order, Quote, place
from archway.orders.events import STOCK_RESERVED, drain

WRITE_SCOPE = "orders:write"

_log = logging.getLogger("archway.orders")


class Orders(Protocol):
    """The write model and its outbox as one unit of work sees them
    (``store.OrderRepository``; tests use a fake). A conditional write that finds the order
    moved on answers ``False``."""

    def add(self, order: Order) -> None: ...
    def get(self, order_id: str, *, lock: bool = False) -> Order | None: ...
    def get_many(self, order_ids: Sequence[str], *, lock: bool = False) -> dict[str, Order]:
        """The orders found among ``order_ids`` (locked in id order, so two transactions
        locking some of the same orders cannot deadlock)."""
        ...
    def save(self, order: Order, previous_version: int) -> bool: ...
    def save_many(self, changed: Sequence[tuple[Order, int]]) -> bool:
        """:meth:`save` for each ``(order, previous_version)`` at once; ``False`` if one of
        them moved on (a driver that cannot count the rows answers ``True``)."""
        ...
    def placed_with(self, customer_id: str, key: str) -> str | None:
        """The order this customer placed with this Idempotency-Key, if any."""
        ...
    def remember_key(self, order: Order, key: str) -> None: ...
    def append(self, events: Iterable[Event]) -> None:
        """Append integration events to the outbox, in this transaction."""
        ...
    def last_position(self, order_id: str) -> int:
        """The outbox position of the newest event about the order (0 if none)."""
        ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """A command's result: the order, and the outbox position of the newest event about it
    at commit (what the read models must have applied for the caller to read its write)."""

    order: Order
    position: int


class OrdersService(Generic[Tx]):
    """``db`` runs the units of work, ``orders`` makes the repository of one
    (``store.OrderRepository`` over ``kernel.db.Database``; fakes in tests)."""

    def __init__(
        self,
        db: UnitsOfWork[Tx],
        catalog: CatalogClient,
        *,
        orders: Callable[[Tx], Orders],
        on_commit: Callable[[], None] = lambda: None,
        admission: Callable[[], Awaitable[object]] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """``admission`` is awaited before a command runs: the process's backpressure
        (:meth:`archway.kernel.events.relays.Relays.keeping_up`), none by default."""
        self._db = db
        self._orders = orders
        self._admission = admission
        self._catalog = catalog
        self._on_commit = on_commit
        self._clock = clock

    async def place_order(self, principal: Principal, lines: Sequence[LineRequest]) -> Order:
        """See :meth:`place`."""
        return (await self.place(principal, lines)).order

    async def cancel_order(self, principal: Principal, order_id: str) -> Order:
        """See :meth:`cancel`."""
        return (await self.cancel(principal, order_id)).order

    async def place(
        self,
        principal: Principal,
        lines: Sequence[LineRequest],
        idempotency_key: str | None = None,
    ) -> Outcome:
        """Customers with `orders:write`: a pending order of 1–50 lines (quantities 1–1000),
        each a product on sale, priced now from the catalog. Stock is reserved afterwards,
        all lines or none: the order then becomes `confirmed` or `rejected` (with a reason).
        One order per `Idempotency-Key` and customer: placing again with the same key answers
        with the order placed the first time, in whatever state it is now."""
        principal.require_scope(WRITE_SCOPE)
        if self._admission is not None:
            await self._admission()
        # A retry is recognised in the transaction below, not by a read before it: most
        # placements are first tries, and a read would cost them a round trip each.
        wanted = {line.product_id for line in lines if is_valid_id(line.product_id)}
        prices = await self._catalog.get_prices(wanted) if wanted else {}
        quotes = {
            product_id: Quote(p.product_id, p.sku, p.name, p.price, p.active)
            for product_id, p in prices.items()
        }
        try:
            order = place(new_id(), principal.subject, lines, quotes, self._clock())
        except (InvalidInput, Unavailable):
            # A retry answers with its order even if the products changed since it was placed.
            if idempotency_key is not None:
                earlier = await self._db.read(
                    lambda tx: _placed(self._orders(tx), principal, idempotency_key))
                if earlier is not None:
                    return earlier
            raise
        events = drain(order)

        def record(tx: Tx) -> Outcome | int:
            repo = self._orders(tx)
            if idempotency_key is not None:
                earlier = _placed(repo, principal, idempotency_key)
                if earlier is not None:  # a retry, or placed meanwhile by a concurrent one
                    return earlier
            repo.add(order)
            if idempotency_key is not None:
                repo.remember_key(order, idempotency_key)
            repo.append(events)
            return repo.last_position(order.id)

        recorded = await self._db.write(record)
        if isinstance(recorded, Outcome):
            return recorded
        self._on_commit()
        return Outcome(order, recorded)

    async def cancel(self, principal: Principal, order_id: str) -> Outcome:
        """The order's customer, or an admin (both with `orders:write`): a pending or confirmed
        order becomes `cancelled` and its stock is released. Cancelling again changes nothing;
        a rejected order cannot be cancelled (409). Someone else's order is not found."""
        principal.require_scope(WRITE_SCOPE)
        if self._admission is not None:
            await self._admission()

        def cancel(tx: Tx) -> tuple[Outcome, bool]:
            repo = self._orders(tx)
            order = repo.get(order_id, lock=True) if is_valid_id(order_id) else None
            if order is None or not (principal.is_admin or order.customer_id == principal.subject):
                raise NotFound("No such order.")
            previous = order.version
            changed = order.cancel(self._clock())
            if changed:
                _saved(repo.save(order, previous))
                repo.append(drain(order))
            return Outcome(order, repo.last_position(order.id)), changed

        outcome, changed = await self._db.write(cancel)
        if changed:
            self._on_commit()
        return outcome

    # -- the saga: the catalog's answers ----------------------------------------------------

    def apply_stock_answers_within(self, tx: Tx, events: Sequence[Event]) -> None:
        """The catalog's answers (stock reserved or rejected) in order, in the caller's
        transaction (the saga's consumer, ``orders.consumers.OrderSaga``): their orders
        read and locked together, each changed order written once, their events appended
        together (a few statements for a whole batch, not a few per answer)."""
        answers = [(event, data_of(event)) for event in events]
        ids = [str(data.get("order_id") or event.get_subject()) for event, data in answers]
        repo = self._orders(tx)
        found = repo.get_many(ids, lock=True)
        loaded = {order_id: order.version for order_id, order in found.items()}
        outgoing: list[Event] = []
        for (event, data), order_id in zip(answers, ids, strict=True):
            with handling(event):  # the events it causes join the answer's trace
                order = found.get(order_id)
                if order is None:
                    _log.warning("%s for unknown order %s ignored", event.get_type(), order_id)
                    continue
                if not order.awaits_stock:  # cancelled meanwhile: its release follows
                    continue
                if event.get_type() == STOCK_RESERVED:
                    order.confirm(self._clock())
                else:
                    order.reject(
                        str(data.get("reason") or "stock could not be reserved"), self._clock())
                outgoing.extend(drain(order))
        changed = [(order, loaded[order_id]) for order_id, order in found.items()
                   if order.version != loaded[order_id]]
        if changed:
            _saved(repo.save_many(changed))
            repo.append(outgoing)


def _placed(repo: Orders, principal: Principal, key: str) -> Outcome | None:
    order_id = repo.placed_with(principal.subject, key)
    order = repo.get(order_id) if order_id is not None else None
    return Outcome(order, repo.last_position(order.id)) if order is not None else None


def _saved(written: bool) -> None:
    # Under the row lock a conditional write cannot miss; if one does, the order moved on.
    if not written:
        raise Conflict("The order changed meanwhile; try again.")

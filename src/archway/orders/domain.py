"""Orders: the Order aggregate, its lines and its status machine. Pure Python, no I/O.

    pending ──(stock reserved)──▶ confirmed ──(cancel)──▶ cancelled
       │ ╰──(stock rejected)──▶ rejected
       ╰──(cancel)──────────────────────────────────────▶ cancelled

An order is priced once, when placed, from the catalog's current prices; its lines keep that
copy, so later price changes or a deleted product never change an order. Every change bumps
``version`` and records a domain event in ``events``; the service turns those into integration
events in the same transaction. Invariants raise kernel errors with JSON Pointers into the
REST body (``/lines/0/product_id``), so each protocol can show which value was refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from archway.kernel.errors import FieldError, FieldPath, InvalidInput, InvalidState, Unavailable
from archway.kernel.money import MAX_AMOUNT, Money, bound_text

MAX_LINES = 50
MAX_QUANTITY = 1000


class OrderStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class LineRequest:
    """What a customer asks for: a product and how many."""

    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Quote:
    """A product's current price as the catalog states it when the order is placed."""

    product_id: str
    sku: str
    name: str
    price: Money
    active: bool


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Money

    @property
    def total(self) -> Money:
        return self.unit_price.times(self.quantity)


# -- domain events: what happened to one order, inside the orders context ------------------


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    order_id: str


@dataclass(frozen=True, slots=True)
class OrderConfirmed:
    order_id: str


@dataclass(frozen=True, slots=True)
class OrderRejected:
    order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OrderCancelled:
    order_id: str
    was: OrderStatus


DomainEvent = OrderPlaced | OrderConfirmed | OrderRejected | OrderCancelled


@dataclass(slots=True)
class Order:
    id: str
    customer_id: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    placed_at: datetime
    updated_at: datetime
    rejection_reason: str | None = None
    version: int = 1
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    @property
    def total(self) -> Money:
        total = Money(0, self.lines[0].unit_price.currency)
        for line in self.lines:
            total = total + line.total
        return total

    @property
    def awaits_stock(self) -> bool:
        """Only a pending order takes the catalog's answer; a late or repeated answer for an
        order that moved on (cancelled meanwhile) changes nothing."""
        return self.status is OrderStatus.PENDING

    def confirm(self, now: datetime) -> None:
        self._move(OrderStatus.CONFIRMED, now)
        self.events.append(OrderConfirmed(self.id))

    def reject(self, reason: str, now: datetime) -> None:
        self._move(OrderStatus.REJECTED, now)
        self.rejection_reason = reason
        self.events.append(OrderRejected(self.id, reason))

    def cancel(self, now: datetime) -> bool:
        """Pending or confirmed → cancelled (its stock is then released). Cancelling a
        cancelled order changes nothing (False); a rejected order cannot be cancelled."""
        if self.status is OrderStatus.CANCELLED:
            return False
        if self.status not in (OrderStatus.PENDING, OrderStatus.CONFIRMED):
            raise InvalidState(f"A {self.status} order cannot be cancelled.")
        was = self.status
        self.status, self.updated_at, self.version = OrderStatus.CANCELLED, now, self.version + 1
        self.events.append(OrderCancelled(self.id, was))
        return True

    def _move(self, to: OrderStatus, now: datetime) -> None:
        if not self.awaits_stock:
            raise InvalidState(f"A {self.status} order cannot become {to}.")
        self.status, self.updated_at, self.version = to, now, self.version + 1


def place(
    order_id: str,
    customer_id: str,
    requested: Sequence[LineRequest],
    quotes: Mapping[str, Quote],
    now: datetime,
) -> Order:
    """A new pending order priced from ``quotes``, or every refused line at once: as
    :class:`Unavailable` (409) when each refusal is only the catalog's current state (a product
    not on sale, another currency), which no schema can state and which may change; else as
    :class:`InvalidInput` (422).

    Each product appears once, is known and on sale; quantities are 1–1000; 1–50 lines; one
    currency per order (the first line's); every line total and the order's total are at most
    :data:`~archway.kernel.money.MAX_AMOUNT` minor units, what every store holds exactly.
    """
    if not 1 <= len(requested) <= MAX_LINES:
        raise InvalidInput.field("lines", f"must have 1 to {MAX_LINES} lines")
    errors: list[FieldError] = []
    unavailable: list[FieldError] = []  # of errors, those the catalog's state alone decides
    lines: list[OrderLine] = []
    first_line: dict[str, int] = {}
    for index, line in enumerate(requested):
        at: FieldPath = ("lines", index)
        if not 1 <= line.quantity <= MAX_QUANTITY:
            errors.append(FieldError((*at, "quantity"), f"must be 1 to {MAX_QUANTITY}"))
        quote = quotes.get(line.product_id)
        if quote is None or not quote.active:
            unavailable.append(FieldError((*at, "product_id"), "is not a product on sale"))
            errors.append(unavailable[-1])
            continue
        if line.product_id in first_line:
            errors.append(FieldError(
                (*at, "product_id"), f"is already on line {first_line[line.product_id]}"))
            continue
        first_line[line.product_id] = index
        if lines and quote.price.currency != lines[0].unit_price.currency:
            unavailable.append(FieldError(
                (*at, "product_id"),
                f"is priced in {quote.price.currency}; this order is in "
                f"{lines[0].unit_price.currency}"))
            errors.append(unavailable[-1])
            continue
        priced = OrderLine(quote.product_id, quote.sku, quote.name, line.quantity, quote.price)
        if 1 <= line.quantity <= MAX_QUANTITY and not priced.total.storable:
            errors.append(FieldError(
                (*at, "quantity"),
                f"makes a line total above {bound_text(quote.price.currency)}"))
            continue
        lines.append(priced)
    if not errors and sum(
            line.total.amount for line in lines) > MAX_AMOUNT:
        errors.append(FieldError(
            ("lines",), f"total above {bound_text(lines[0].unit_price.currency)}"))
    if errors and len(errors) == len(unavailable):
        raise Unavailable("The catalog does not offer some lines as asked.", errors)
    if errors:  # with any line not well-formed, every refused line is reported at once
        raise InvalidInput("The order has invalid lines.", errors)
    order = Order(
        id=order_id, customer_id=customer_id, status=OrderStatus.PENDING, lines=tuple(lines),
        placed_at=now, updated_at=now)
    order.events.append(OrderPlaced(order_id))
    return order



"""Products, their stock, and the reservation rule: pure Python, no I/O.

A product owns its stock: the two change together under one ``version``, because the public
representation shows ``available`` and its ``ETag`` must change whenever that number does.
Invariants raise :class:`InvalidInput` with the path of the refused field (``("price", "amount")``,
``("on_hand",)``), which every protocol renders in its own form for the client.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from archway.kernel.errors import Conflict, FieldError, FieldPath, InvalidInput
from archway.kernel.ids import new_id
from archway.kernel.money import Money, bound_text
from archway.kernel.pagination import cursor_id, cursor_integer, cursor_text, cursor_time
from archway.kernel.text import has_control_character, has_nul

T = TypeVar("T")

ExpectedVersion = int | frozenset[int] | None
"""What a conditional write expects: nothing, one version, or any of several (an If-Match list)."""

SKU_MAX, NAME_MAX, DESCRIPTION_MAX, CATEGORY_MAX = 64, 200, 5000, 64
SKU_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
CATEGORY_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
_SKU = re.compile(SKU_PATTERN)
_CATEGORY = re.compile(CATEGORY_PATTERN)


class ProductSort(StrEnum):
    """List orders; ``-`` means descending. Ties are broken by id (creation order)."""

    CREATED_AT = "created_at"
    NAME = "name"
    PRICE = "price"
    PRICE_DESC = "-price"


def cursor_key(sort: ProductSort, after: tuple[object, ...]) -> tuple[datetime | str | int, str]:
    """The cursor's sort key and id, each checked for what ``sort`` writes (422 otherwise)."""
    value, last_id = after
    if sort is ProductSort.CREATED_AT:
        return cursor_time(value), cursor_id(last_id)
    if sort is ProductSort.NAME:
        return cursor_text(value), cursor_id(last_id)
    return cursor_integer(value), cursor_id(last_id)


@dataclass(frozen=True, slots=True)
class ProductFilters:
    """Narrowing of a product list; prices are inclusive bounds in minor units."""

    q: str | None = None
    category: str | None = None
    min_price: int | None = None
    max_price: int | None = None


MAX_ON_HAND = 1_000_000_000
"""The largest stock count, in every protocol."""


def check_on_hand(on_hand: int) -> None:
    """A stock count's range, refused at ``on_hand`` outside it."""
    if not 0 <= on_hand <= MAX_ON_HAND:
        raise InvalidInput.field("on_hand", f"must be 0 to {MAX_ON_HAND}")


@dataclass(frozen=True, slots=True)
class Stock:
    """Units on hand and units reserved by accepted orders; only the difference can be sold."""

    on_hand: int = 0
    reserved: int = 0

    def __post_init__(self) -> None:
        if self.on_hand < 0:
            raise InvalidInput.field("on_hand", "must be zero or more")
        if self.reserved < 0:
            raise InvalidInput.field("reserved", "must be zero or more")
        if self.reserved > self.on_hand:
            raise InvalidInput.field(
                "on_hand",
                f"cannot be below the {self.reserved} units reserved by orders",
            )

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def with_on_hand(self, on_hand: int) -> Stock:
        """A stock count: refused below what orders already hold, which stays promised."""
        return Stock(on_hand, self.reserved)

    def reserve(self, quantity: int) -> Stock | None:
        """``quantity`` more units held, or ``None`` when fewer than that are available."""
        if quantity > self.available:
            return None
        return Stock(self.on_hand, self.reserved + quantity)

    def release(self, quantity: int) -> Stock:
        """Give back held units (never below zero, whatever the stored rows say)."""
        return Stock(self.on_hand, max(0, self.reserved - quantity))


@dataclass(frozen=True, slots=True)
class StockLevel:
    """A product's stock as its own resource; ``version`` is the product's (one ETag for both)."""

    product_id: str
    version: int
    stock: Stock


@dataclass(frozen=True, slots=True)
class ProductDraft:
    """What a client supplies to create a product; everything else is decided here."""

    sku: str
    name: str
    category: str
    price: Money
    description: str = ""
    active: bool = True


@dataclass(frozen=True, slots=True)
class ProductChanges:
    """A partial update: ``None`` leaves a field as it is (no field of a product is nullable)."""

    sku: str | None = None
    name: str | None = None
    description: str | None = None
    category: str | None = None
    price: Money | None = None
    active: bool | None = None


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    sku: str
    name: str
    description: str
    category: str
    price: Money
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    stock: Stock = field(default_factory=Stock)

    @property
    def available(self) -> int:
        return self.stock.available

    @property
    def stock_level(self) -> StockLevel:
        return StockLevel(self.id, self.version, self.stock)

    def matches(self, expected: ExpectedVersion) -> bool:
        """An ``If-Match`` check: no expectation, or one of the expected versions is current."""
        if expected is None:
            return True
        if isinstance(expected, int):
            return expected == self.version
        return self.version in expected

    def changed(self, changes: ProductChanges, now: datetime) -> Product:
        """The product with ``changes`` applied and checked; itself when nothing differs."""
        updated = replace(
            self,
            sku=_pick(changes.sku, self.sku),
            name=_pick(changes.name, self.name),
            description=_pick(changes.description, self.description),
            category=_pick(changes.category, self.category),
            price=_pick(changes.price, self.price),
            active=_pick(changes.active, self.active),
        )
        if updated == self:
            return self
        raise_if_any(check_fields(
            updated.sku, updated.name, updated.description, updated.category, updated.price))
        return replace(updated, version=self.version + 1, updated_at=now)

    def with_on_hand(self, on_hand: int, now: datetime) -> Product:
        """A new stock count; a change of stock is a change of the product (new version)."""
        return replace(
            self, stock=self.stock.with_on_hand(on_hand), version=self.version + 1, updated_at=now
        )


def _pick(new: T | None, old: T) -> T:
    return old if new is None else new


def new_product(draft: ProductDraft, now: datetime) -> Product:
    """A product checked against every invariant at once, with no stock yet (version 1)."""
    raise_if_any(check_fields(
        draft.sku, draft.name, draft.description, draft.category, draft.price))
    return Product(
        id=new_id(), sku=draft.sku, name=draft.name, description=draft.description,
        category=draft.category, price=draft.price, active=draft.active, version=1,
        created_at=now, updated_at=now,
    )


def check_fields(
    sku: str, name: str, description: str, category: str, price: Money
) -> list[FieldError]:
    """Every invalid value, so a client can fix them all in one round trip."""
    errors: list[FieldError] = []
    if not _SKU.fullmatch(sku):
        errors.append(FieldError(
            ("sku",), f"must be 1 to {SKU_MAX} letters, digits, '.', '_' or '-'"))
    if not name.strip() or len(name) > NAME_MAX:
        errors.append(FieldError(("name",), f"must be 1 to {NAME_MAX} characters, not only spaces"))
    elif has_control_character(name):
        errors.append(FieldError(("name",), "must not contain control characters"))
    if len(description) > DESCRIPTION_MAX:
        errors.append(FieldError(("description",), f"must be at most {DESCRIPTION_MAX} characters"))
    elif has_nul(description):
        errors.append(FieldError(("description",), "must not contain NUL characters"))
    if len(category) > CATEGORY_MAX or not _CATEGORY.fullmatch(category):
        errors.append(FieldError(
            ("category",), "must be a lower-case slug such as 'board-games' (1 to 64 characters)"))
    errors.extend(price_errors(price))
    return errors


def price_errors(price: Money, path: FieldPath = ("price", "amount")) -> list[FieldError]:
    """A price out of bounds, named at ``path``: its amount, as REST v2, GraphQL and gRPC
    write money (``{amount, currency}``); REST v1, whose price is one decimal string, names
    ``("price",)``."""
    if price.amount < 0:
        return [FieldError(path, "must be zero or more")]
    if not price.storable:
        return [FieldError(path, f"must be at most {bound_text(price.currency)}")]
    return []


def raise_if_any(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidInput(errors[0].detail if len(errors) == 1 else None, errors)


# -- reservations: all lines of an order, or none -------------------------------------------


@dataclass(frozen=True, slots=True)
class Reserved:
    """Every line is held: the stocks to write back, keyed by product id."""

    stocks: dict[str, Stock]
    quantities: dict[str, int]


@dataclass(frozen=True, slots=True)
class Rejected:
    """Nothing is held; ``reason`` is shown to the customer on the order."""

    reason: str

    @classmethod
    def insufficient_stock(cls, product_id: str) -> Rejected:
        return cls(f"insufficient stock for {product_id}")


class ReservationRecorded(Conflict):
    """Two deliveries of one order's reservation raced; the first one's outcome stands. A
    store raises it when it finds the order recorded meanwhile; the service asks again."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"The reservation of order {order_id} was recorded concurrently.")


@dataclass(frozen=True, slots=True)
class ReservationOutcome:
    """The answer to "hold stock for this order": the same every time the order asks again."""

    order_id: str
    accepted: bool
    reason: str | None = None

    @classmethod
    def recorded(
        cls, order_id: str, status: ReservationStatus, reason: str | None
    ) -> ReservationOutcome:
        """The answer an order got the first time, from what the catalog recorded for it."""
        if status in (ReservationStatus.HELD, ReservationStatus.RELEASED):
            return cls(order_id, accepted=True)
        if status is ReservationStatus.CANCELLED:
            return cls(order_id, accepted=False, reason="the order was cancelled")
        return cls(order_id, accepted=False, reason=reason)


class ReservationStatus(StrEnum):
    """What the catalog recorded for an order: stock held (later released), or none held
    because it fell short (rejected) or the order was cancelled before it was reserved."""

    HELD = "held"
    RELEASED = "released"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


def merge_lines(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Quantities per product, sorted by id so every writer locks rows in the same order."""
    totals: dict[str, int] = {}
    for product_id, quantity in lines:
        if quantity < 1:
            raise InvalidInput.field("lines", "every quantity must be 1 or more")
        totals[product_id] = totals.get(product_id, 0) + quantity
    if not totals:
        raise InvalidInput.field("lines", "an order needs at least one line")
    return dict(sorted(totals.items()))


def reserve_all(
    products: Mapping[str, Product], lines: Sequence[tuple[str, int]]
) -> Reserved | Rejected:
    """Hold stock for every line, or for none: a partial order is never confirmed.

    A product that is missing or no longer sold rejects the whole order, as does a line asking
    for more than is available (lines for the same product count together).
    """
    quantities = merge_lines(lines)
    stocks: dict[str, Stock] = {}
    for product_id, quantity in quantities.items():
        product = products.get(product_id)
        if product is None:
            return Rejected(f"unknown product {product_id}")
        if not product.active:
            return Rejected(f"product {product_id} is no longer sold")
        held = product.stock.reserve(quantity)
        if held is None:
            return Rejected.insufficient_stock(product_id)
        stocks[product_id] = held
    return Reserved(stocks, quantities)


def release_all(products: Mapping[str, Product], lines: Mapping[str, int]) -> dict[str, Stock]:
    """The stocks once an order's held lines are given back; a product deleted since the
    order was placed has nothing to give back to."""
    return {
        product_id: products[product_id].stock.release(quantity)
        for product_id, quantity in lines.items()
        if product_id in products
    }

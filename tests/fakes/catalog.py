"""A fake of the catalog's repository: products, stock and reservations."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from archway.catalog.domain import (
    Product,
    ProductFilters,
    ProductSort,
    Rejected,
    ReservationOutcome,
    ReservationRecorded,
    ReservationStatus,
    Reserved,
    Stock,
    cursor_key,
)
from archway.kernel.errors import Conflict
from archway.kernel.pagination import Page, PageRequest
from tests.fakes.state import FakeIntegrityError, FakeReservation, FakeState, T


class FakeProducts:
    """``catalog.store.CatalogRepository`` in memory: products with their stock, and one
    reservation per order. Refusals come back as the real store gives them: ``False`` from a
    conditional write, a product id from a hold that falls short, ``Conflict`` for a taken sku."""

    def __init__(self, state: FakeState) -> None:
        self._products = state.products
        self._reservations = state.reservations

    def get(self, product_id: str, *, lock: bool = False) -> Product | None:
        return self._products.get(product_id)

    def get_many(
        self, product_ids: Collection[str], *, lock: bool = False
    ) -> dict[str, Product]:
        return {product_id: self._products[product_id]
                for product_id in sorted(set(product_ids)) if product_id in self._products}

    def add(self, product: Product) -> None:
        if product.id in self._products or self._sku_taken(product.sku, by_other_than=None):
            raise Conflict(f"A product with sku {product.sku!r} already exists.")
        self._products[product.id] = product

    def save(self, product: Product, previous_version: int) -> bool:
        current = self._products.get(product.id)
        if current is None or current.version != previous_version:
            return False
        if self._sku_taken(product.sku, by_other_than=product.id):
            raise Conflict(f"A product with sku {product.sku!r} already exists.")
        # The product's own fields only: stock and creation time are not the caller's to write.
        self._products[product.id] = replace(
            product, created_at=current.created_at, stock=current.stock)
        return True

    def save_on_hand(self, product: Product, previous_version: int) -> bool:
        current = self._products.get(product.id)
        if current is None or current.version != previous_version:
            return False
        # Like the real store: the version moves first, then the count is written only if it
        # still covers what is reserved; a False leaves the caller to roll back.
        current = replace(current, version=product.version, updated_at=product.updated_at)
        self._products[product.id] = current
        if current.stock.reserved > product.stock.on_hand:
            return False
        self._products[product.id] = replace(
            current, stock=Stock(product.stock.on_hand, current.stock.reserved))
        return True

    def remove(self, product_id: str, version: int) -> bool:
        current = self._products.get(product_id)
        if current is None or current.version != version:
            return False
        del self._products[product_id]  # its stock goes with it; reservation lines stay
        return True

    def list(
        self, filters: ProductFilters, sort: ProductSort, page: PageRequest, *, active_only: bool
    ) -> Page[Product]:
        descending = sort is ProductSort.PRICE_DESC
        rows = sorted(
            (p for p in self._products.values() if _wanted(p, filters, active_only)),
            key=lambda p: (_sort_key(sort, p), p.id), reverse=descending)
        if not page.wants_cursor:
            offset = page.offset or 0
            return Page(rows[offset: offset + page.limit], total=len(rows))
        if page.after is not None:
            bound = _cursor_bound(sort, page.after)
            rows = [p for p in rows
                    if ((_sort_key(sort, p), p.id) < bound if descending
                        else (_sort_key(sort, p), p.id) > bound)]
        items = rows[: page.limit]
        more = len(rows) > page.limit
        return Page(items, next_after=_cursor(sort, items[-1]) if more else None)

    # -- reservations ---------------------------------------------------------------------

    def reservation(self, order_id: str) -> ReservationOutcome | None:
        row = self._reservations.get(order_id)
        if row is None:
            return None
        return ReservationOutcome.recorded(order_id, row.status, row.reason)

    def hold(self, order_id: str, reserved: Reserved, now: datetime) -> str | None:
        """Every line or none, judged on the stored counts (``reserved.stocks`` is ignored, as
        the real store's conditional updates ignore it): the first product short, else None."""
        held: dict[str, Stock] = {}
        for product_id, quantity in reserved.quantities.items():
            product = self._products.get(product_id)
            stock = product.stock.reserve(quantity) if product is not None else None
            if stock is None:
                return product_id
            held[product_id] = stock
        for product_id, stock in held.items():
            self._products[product_id] = replace(self._products[product_id], stock=stock)
        self._bump_versions(held, now)
        self._insert(order_id, FakeReservation(
            ReservationStatus.HELD, None, now, dict(reserved.quantities)))
        return None

    def reservations_of(self, order_ids: Collection[str]) -> dict[str, ReservationOutcome]:
        return {order_id: outcome for order_id in sorted(set(order_ids))
                if (outcome := self.reservation(order_id)) is not None}

    def hold_all(
        self, held: Sequence[tuple[str, Reserved]], rejected: Sequence[tuple[str, Rejected]],
        now: datetime,
    ) -> str | None:
        """The real store's batch: the summed lines of every held order judged together (the
        first product short, holding nothing), then a row per order."""
        totals: dict[str, int] = {}
        for _, reserved in held:
            for product_id, quantity in reserved.quantities.items():
                totals[product_id] = totals.get(product_id, 0) + quantity
        stocks: dict[str, Stock] = {}
        for product_id in sorted(totals):
            product = self._products.get(product_id)
            stock = product.stock.reserve(totals[product_id]) if product is not None else None
            if stock is None:
                return product_id
            stocks[product_id] = stock
        recorded = [order_id for order_id, _ in [*held, *rejected]
                    if order_id in self._reservations]
        if recorded:  # the real store's insert fails on the reservation's key
            raise ReservationRecorded(", ".join(recorded))
        for product_id, stock in stocks.items():
            self._products[product_id] = replace(self._products[product_id], stock=stock)
        self._bump_versions(stocks, now)
        for order_id, reserved in held:
            self._insert(order_id, FakeReservation(
                ReservationStatus.HELD, None, now, dict(reserved.quantities)))
        for order_id, decision in rejected:
            self.record_rejection(order_id, decision, now)
        return None

    def record_rejection(self, order_id: str, rejected: Rejected, now: datetime) -> None:
        self._insert(order_id, FakeReservation(ReservationStatus.REJECTED, rejected.reason, now))

    def held_lines(self, order_id: str) -> dict[str, int] | None:
        row = self._reservations.get(order_id)
        if row is None:
            return None
        if row.status != ReservationStatus.HELD:
            return {}
        return dict(sorted(row.lines.items()))

    def give_back(self, order_id: str, stocks: Mapping[str, Stock], now: datetime) -> None:
        for product_id, released in stocks.items():
            product = self._products.get(product_id)
            if product is not None:
                self._products[product_id] = replace(
                    product, stock=Stock(product.stock.on_hand, released.reserved))
        self._bump_versions(stocks, now)
        row = self._reservations.get(order_id)
        if row is not None:
            self._reservations[order_id] = replace(
                row, status=ReservationStatus.RELEASED, updated_at=now)

    def record_cancellation(self, order_id: str, now: datetime) -> None:
        self._insert(order_id, FakeReservation(ReservationStatus.CANCELLED, None, now))

    def first_recorder(self, decide: Callable[[], T]) -> T:
        return decide()  # one writer at a time: no concurrent transaction records first

    def _insert(self, order_id: str, row: FakeReservation) -> None:
        if order_id in self._reservations:
            raise FakeIntegrityError(f"a reservation row for order {order_id} already exists")
        self._reservations[order_id] = row

    def _bump_versions(self, product_ids: Iterable[str], now: datetime) -> None:
        for product_id in product_ids:
            product = self._products.get(product_id)
            if product is not None:
                self._products[product_id] = replace(
                    product, version=product.version + 1, updated_at=now)

    def _sku_taken(self, sku: str, *, by_other_than: str | None) -> bool:
        return any(p.sku == sku and p.id != by_other_than for p in self._products.values())


def _wanted(product: Product, filters: ProductFilters, active_only: bool) -> bool:
    if active_only and not product.active:
        return False
    if filters.q:  # a substring in any case: no wildcards, as the store escapes them
        text = filters.q.lower()
        if text not in product.name.lower() and text not in product.description.lower():
            return False
    if filters.category is not None and product.category != filters.category:
        return False
    if filters.min_price is not None and product.price.amount < filters.min_price:
        return False
    return filters.max_price is None or product.price.amount <= filters.max_price


def _sort_key(sort: ProductSort, product: Product) -> datetime | str | int:
    if sort is ProductSort.CREATED_AT:
        return product.created_at
    if sort is ProductSort.NAME:
        return product.name
    return product.price.amount


def _cursor(sort: ProductSort, product: Product) -> tuple[str | int, str]:
    """The store's cursor: the sort key (JSON-friendly) and the id as the tie-breaker."""
    key = _sort_key(sort, product)
    return (key.isoformat() if isinstance(key, datetime) else key), product.id


def _cursor_bound(sort: ProductSort, after: tuple[object, ...]) -> tuple[Any, str]:
    """A cursor checked as the store checks it, as a key to compare rows with."""
    return cursor_key(sort, after)

"""Catalog use cases: one method each, with the rule and who may call it.

Public reads (a product, a page of the list) go through a per-process cache that keeps answers
for one second by default: they are by far the most frequent requests, a write in this process
drops what it touched at once, and a write in another process is seen within the TTL. Admin
reads and every write go to the database.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from archway.catalog.domain import (
    ExpectedVersion,
    Product,
    ProductChanges,
    ProductDraft,
    ProductFilters,
    ProductSort,
    Rejected,
    ReservationOutcome,
    ReservationRecorded,
    Reserved,
    Stock,
    StockLevel,
    check_on_hand,
    merge_lines,
    new_product,
    release_all,
    reserve_all,
)
from archway.catalog.reserving import reserve_in_turn
from archway.kernel.auth.principal import Principal
from archway.kernel.clock import utc_now
from archway.kernel.errors import InvalidInput, NotFound, PreconditionFailed
from archway.kernel.ids import is_valid_id
from archway.kernel.pagination import Page, PageRequest
from archway.kernel.ttl_cache import TtlCache
from archway.kernel.uow import Tx, UnitsOfWork

T = TypeVar("T")
WRITE_SCOPE = "catalog:write"
MAX_BATCH = 100
ListQuery = tuple[ProductFilters, ProductSort, PageRequest]


class Products(Protocol):
    """Products, their stock and the reservations on them, as one unit of work sees them
    (``store.CatalogRepository``; tests use a fake). A duplicate SKU raises ``Conflict``; a
    conditional write that finds the product moved on answers ``False``, and a hold that falls
    short answers the product's id, holding nothing."""

    def get(self, product_id: str, *, lock: bool = False) -> Product | None: ...
    def get_many(
        self, product_ids: Collection[str], *, lock: bool = False
    ) -> dict[str, Product]: ...
    def add(self, product: Product) -> None: ...
    def save(self, product: Product, previous_version: int) -> bool: ...
    def save_on_hand(self, product: Product, previous_version: int) -> bool: ...
    def remove(self, product_id: str, version: int) -> bool: ...
    def list(
        self, filters: ProductFilters, sort: ProductSort, page: PageRequest, *, active_only: bool
    ) -> Page[Product]: ...
    def reservation(self, order_id: str) -> ReservationOutcome | None: ...
    def reservations_of(self, order_ids: Collection[str]) -> dict[str, ReservationOutcome]: ...
    def hold_all(
        self, held: Sequence[tuple[str, Reserved]], rejected: Sequence[tuple[str, Rejected]],
        now: datetime,
    ) -> str | None: ...
    def hold(self, order_id: str, reserved: Reserved, now: datetime) -> str | None: ...
    def record_rejection(self, order_id: str, rejected: Rejected, now: datetime) -> None: ...
    def held_lines(self, order_id: str) -> dict[str, int] | None: ...
    def give_back(self, order_id: str, stocks: Mapping[str, Stock], now: datetime) -> None: ...
    def record_cancellation(self, order_id: str, now: datetime) -> None: ...
    def first_recorder(self, decide: Callable[[], T]) -> T:
        """``decide`` inside the caller's transaction; if a concurrent one recorded the order
        first (``ReservationRecorded``), only ``decide``'s writes roll back and it decides
        again, answering as that one did."""
        ...


class CatalogService(Generic[Tx]):
    """``db`` runs the units of work, ``products`` makes the repository of one
    (``store.CatalogRepository`` over ``kernel.db.Database``; fakes in tests)."""

    def __init__(
        self,
        db: UnitsOfWork[Tx],
        *,
        products: Callable[[Tx], Products],
        cache_ttl_seconds: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._repo = products
        self._products: TtlCache[str, Product] = TtlCache(cache_ttl_seconds)
        self._lists: TtlCache[ListQuery, Page[Product]] = TtlCache(cache_ttl_seconds)
        # Quotes for orders: stock moves with every order, prices and names rarely, so they are
        # cached apart, per set of products asked together, and kept across reservations.
        self._quotes: TtlCache[frozenset[str], dict[str, Product]] = TtlCache(cache_ttl_seconds)
        self._clock = clock

    # -- public reads -----------------------------------------------------------------------

    async def list_products(
        self, filters: ProductFilters, sort: ProductSort, page: PageRequest
    ) -> Page[Product]:
        """Anyone: the products on sale (active), filtered, sorted, one page at a time."""

        def load(tx: Tx) -> Page[Product]:
            return self._repo(tx).list(filters, sort, page, active_only=True)

        return await self._lists.get_or_load((filters, sort, page), lambda: self._db.read(load))

    async def get_product(self, product_id: str, principal: Principal | None = None) -> Product:
        """Anyone sees a product on sale; an admin with ``catalog:write`` also sees the ones
        taken off sale. A deleted, unknown or malformed id is not found."""
        if principal is not None and principal.is_admin and principal.has_scope(WRITE_SCOPE):
            return await self._existing(product_id)
        return await self._products.get_or_load(product_id, lambda: self._on_sale(product_id))

    async def visible_products(
        self, product_ids: Collection[str], principal: Principal | None = None
    ) -> dict[str, Product]:
        """:meth:`get_product` for many ids in one query (what GraphQL's loaders batch): the
        ones the caller may see, by id; the others (unknown, malformed, off sale to anyone
        but an admin with ``catalog:write``) are absent."""
        wanted = frozenset(product_id for product_id in product_ids if is_valid_id(product_id))
        if not wanted:
            return {}
        found = await self._db.read(lambda tx: self._repo(tx).get_many(wanted))
        if principal is not None and principal.is_admin and principal.has_scope(WRITE_SCOPE):
            return found
        return {product_id: p for product_id, p in found.items() if p.active}

    async def get_products(
        self, product_ids: Sequence[str], principal: Principal | None = None
    ) -> list[Product]:
        """Several products at once, in the order asked (1 to 100 ids), each by the rule of
        :meth:`get_product` (:meth:`visible_products`). If one of them is not found, none is
        answered: NotFound names where it is in the list."""
        if not 1 <= len(product_ids) <= MAX_BATCH:
            raise InvalidInput.field("ids", f"must name 1 to {MAX_BATCH} products")
        found = await self.visible_products(product_ids, principal)
        for index, product_id in enumerate(product_ids):
            if product_id not in found:
                raise NotFound(f"No such product (ids[{index}]).")
        return [found[product_id] for product_id in product_ids]

    # -- admin writes -----------------------------------------------------------------------

    async def create_product(self, principal: Principal, draft: ProductDraft) -> Product:
        """Admins with ``catalog:write``. SKUs are unique (409); a new product has no stock."""
        principal.require_admin(WRITE_SCOPE)
        product = new_product(draft, self._clock())
        await self._db.write(lambda tx: self._repo(tx).add(product))
        self._forget()
        return product

    async def update_product(
        self,
        principal: Principal,
        product_id: str,
        changes: ProductChanges,
        expected_version: ExpectedVersion = None,
    ) -> Product:
        """Admins with ``catalog:write``; refused with 412 unless the product is at an expected
        version. A change that changes nothing keeps the version."""
        principal.require_admin(WRITE_SCOPE)

        def apply(tx: Tx) -> Product:
            repo = self._repo(tx)
            current = _locked(repo, product_id, expected_version)
            updated = current.changed(changes, self._clock())
            if updated is not current:
                _written(repo.save(updated, current.version))
            return updated

        updated = await self._db.write(apply)
        self._forget(product_id)
        return updated

    async def delete_product(
        self, principal: Principal, product_id: str, expected_version: ExpectedVersion = None
    ) -> None:
        """Admins with ``catalog:write``; afterwards the product is 404 for everyone. Stock it
        held for orders is simply gone with it: those orders keep their own copy of the lines."""
        principal.require_admin(WRITE_SCOPE)

        def remove(tx: Tx) -> None:
            repo = self._repo(tx)
            current = _locked(repo, product_id, expected_version)
            _written(repo.remove(product_id, current.version))

        await self._db.write(remove)
        self._forget(product_id)

    async def set_stock(
        self,
        principal: Principal,
        product_id: str,
        on_hand: int,
        expected_version: ExpectedVersion = None,
    ) -> StockLevel:
        """Admins with ``catalog:write``: a stock count. It may not drop below the units that
        orders hold (422 on ``/on_hand``); it changes the product's version (and ETag)."""
        principal.require_admin(WRITE_SCOPE)
        check_on_hand(on_hand)

        def count(tx: Tx) -> StockLevel:
            repo = self._repo(tx)
            current = _locked(repo, product_id, expected_version)
            counted = current.with_on_hand(on_hand, self._clock())
            _written(repo.save_on_hand(counted, current.version))
            return counted.stock_level

        level = await self._db.write(count)
        self._forget_stock_of(product_id)
        return level

    async def get_stock(self, principal: Principal, product_id: str) -> StockLevel:
        """Admins with ``catalog:write``: on hand, reserved and available units."""
        principal.require_admin(WRITE_SCOPE)
        return (await self._existing(product_id)).stock_level

    # -- the port other contexts use (through client.py) ----------------------------------

    async def get_prices(self, product_ids: Collection[str]) -> dict[str, Product]:
        """Other contexts: current prices of the products that exist (active or not), in one
        query; ids that are unknown or malformed are simply absent from the answer. Like the
        product page, an answer may come from this process's cache (``cache_ttl_seconds``):
        product writes in this process drop it at once, another process's show within the
        TTL. Only the product's price, names and status are meant here: its stock is not
        current."""
        wanted = frozenset(product_id for product_id in product_ids if is_valid_id(product_id))
        if not wanted:
            return {}
        return dict(await self._quotes.get_or_load(
            wanted, lambda: self._db.read(lambda tx: self._repo(tx).get_many(wanted))))

    async def reserve(
        self, order_id: str, lines: Sequence[tuple[str, int]]
    ) -> ReservationOutcome:
        """Other contexts (the order saga): hold stock for every line of an order, or none.

        Idempotent per order: asking again answers as the first time did and holds nothing
        more, and an order released (cancelled) before it was reserved holds nothing.
        """
        quantities = merge_lines(lines)

        def hold(tx: Tx) -> tuple[ReservationOutcome, bool]:
            return _hold_or_reject(self._repo(tx), order_id, quantities, self._clock())

        try:
            outcome, held = await self._db.write(hold)
        except ReservationRecorded:  # a concurrent delivery won: run again to answer as it did
            outcome, held = await self._db.write(hold)
        if held:
            self._forget_stock_of(*quantities)
        return outcome

    def reserve_within(
        self, tx: Tx, order_id: str, lines: Sequence[tuple[str, int]]
    ) -> ReservationOutcome:
        """:meth:`reserve` inside the caller's transaction (the saga's consumer, whose inbox
        row and answer commit with it); call :meth:`forget_stock` once it has committed."""
        quantities = merge_lines(lines)
        repo = self._repo(tx)
        return repo.first_recorder(lambda: _hold_or_reject(
            repo, order_id, quantities, self._clock())[0])

    def reserve_all_within(
        self, tx: Tx, orders: Sequence[tuple[str, Sequence[tuple[str, int]]]]
    ) -> list[ReservationOutcome]:
        """:meth:`reserve_within` for each ``(order_id, lines)`` in turn, decided together: as
        many statements for a hundred orders as for one. Raises :class:`ReservationRecorded`
        if a concurrent transaction recorded one of them (then reserve them one by one)."""
        return reserve_in_turn(self._repo(tx), orders, self._clock())

    def release_within(self, tx: Tx, order_id: str) -> None:
        """:meth:`release` inside the caller's transaction; then :meth:`forget_stock`."""
        repo = self._repo(tx)
        repo.first_recorder(lambda: _give_back(repo, order_id, self._clock()))

    def forget_stock(self, product_ids: Collection[str] | None) -> None:
        """After a reservation or release committed: those cached products are stale (all of
        them, for ``None``)."""
        if product_ids is None:
            self._products.clear()
            self._lists.clear()
        else:
            self._forget_stock_of(*product_ids)

    async def release(self, order_id: str) -> None:
        """Other contexts (order cancelled): give back what the order holds. Idempotent; a
        release that arrives before its reserve makes that reserve hold nothing."""
        def give_back(tx: Tx) -> dict[str, int]:
            return _give_back(self._repo(tx), order_id, self._clock())

        try:
            given_back = await self._db.write(give_back)
        except ReservationRecorded:  # a concurrent reserve or release recorded the order first
            given_back = await self._db.write(give_back)
        self._forget_stock_of(*given_back)

    # -- helpers ----------------------------------------------------------------------------

    async def _on_sale(self, product_id: str) -> Product:
        product = await self._existing(product_id)
        if not product.active:
            raise NotFound("No such product.")
        return product

    async def _existing(self, product_id: str) -> Product:
        if not is_valid_id(product_id):
            raise NotFound("No such product.")
        product = await self._db.read(lambda tx: self._repo(tx).get(product_id))
        if product is None:
            raise NotFound("No such product.")
        return product

    def _forget(self, *product_ids: str) -> None:
        """After a write in this process: its products, and every cached list and quote, are
        stale. (Reservations only move stock: they call :meth:`_forget_stock_of`.)"""
        self._forget_stock_of(*product_ids)
        self._quotes.clear()

    def _forget_stock_of(self, *product_ids: str) -> None:
        self._products.drop(*product_ids)
        self._lists.clear()


def _written(written: bool) -> None:
    # Under the row lock a conditional write cannot miss; if one does, the product moved on.
    if not written:
        raise PreconditionFailed("The product has changed since you read it.")


def _locked(repo: Products, product_id: str, expected: ExpectedVersion) -> Product:
    """The product, locked for this transaction, if it is at an expected version."""
    product = repo.get(product_id, lock=True) if is_valid_id(product_id) else None
    if product is None:
        raise NotFound("No such product.")
    if not product.matches(expected):
        raise PreconditionFailed("The product has changed since you read it.")
    return product


def _give_back(repo: Products, order_id: str, now: datetime) -> dict[str, int]:
    """The lines given back (none if the order held nothing)."""
    lines = repo.held_lines(order_id)
    if lines is None:
        repo.record_cancellation(order_id, now)
        return {}
    if lines:
        repo.give_back(order_id, release_all(repo.get_many(lines, lock=True), lines), now)
    return lines


def _hold_or_reject(
    repo: Products, order_id: str, quantities: dict[str, int], now: datetime
) -> tuple[ReservationOutcome, bool]:
    """The order's outcome, and whether stock was held just now (so caches are stale)."""
    earlier = repo.reservation(order_id)
    if earlier is not None:
        return earlier, False
    decision = reserve_all(repo.get_many(quantities, lock=True), list(quantities.items()))
    if not isinstance(decision, Rejected):
        short = repo.hold(order_id, decision, now)
        if short is None:
            return ReservationOutcome(order_id, accepted=True), True
        decision = Rejected.insufficient_stock(short)
    repo.record_rejection(order_id, decision, now)
    return ReservationOutcome(order_id, accepted=False, reason=decision.reason), False

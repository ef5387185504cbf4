"""Catalog use cases: one method each, with the rule and who may call it.

Public reads go through a tiny per-process cache (one second by default): product pages are by
far the hottest reads, a write in this process drops the entries it touched at once, and a write
in another process is seen within the TTL. Conditional writes never read the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from archway.catalog.domain import (
    ExpectedVersion,
    Product,
    ProductChanges,
    ProductDraft,
    ProductFilters,
    ProductSort,
    Rejected,
    ReservationOutcome,
    StockLevel,
    merge_lines,
    new_product,
    release_all,
    reserve_all,
    utc_now,
)
from archway.catalog.store import CatalogRepository
from archway.kernel.auth.principal import Principal
from archway.kernel.db import Database
from archway.kernel.errors import NotFound, PreconditionFailed
from archway.kernel.ids import is_valid_id
from archway.kernel.pagination import Page, PageRequest

WRITE_SCOPE = "catalog:write"
CACHE_MAX_ENTRIES = 10_000


class CatalogService:
    def __init__(
        self,
        db: Database,
        *,
        cache_ttl_seconds: float = 1.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._db = db
        self._cache_ttl = cache_ttl_seconds
        self._cache: dict[str, tuple[float, Product]] = {}
        self._clock = clock

    # -- public reads -----------------------------------------------------------------------

    async def list_products(
        self, filters: ProductFilters, sort: ProductSort, page: PageRequest
    ) -> Page[Product]:
        """Anyone: the products on sale (active), filtered, sorted, one page at a time."""
        async with self._db.read() as conn:
            return await CatalogRepository(conn).list(filters, sort, page, active_only=True)

    async def get_product(self, product_id: str, principal: Principal | None = None) -> Product:
        """Anyone sees a product on sale; an admin with ``catalog:write`` also sees the ones
        taken off sale. A deleted, unknown or malformed id is not found."""
        if principal is not None and principal.is_admin and principal.has_scope(WRITE_SCOPE):
            return await self._existing(product_id)
        cached = self._cache.get(product_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        product = await self._existing(product_id)
        if not product.active:
            raise NotFound("No such product.")
        if len(self._cache) >= CACHE_MAX_ENTRIES:
            self._cache.clear()
        self._cache[product_id] = (time.monotonic() + self._cache_ttl, product)
        return product

    # -- admin writes -----------------------------------------------------------------------

    async def create_product(self, principal: Principal, draft: ProductDraft) -> Product:
        """Admins with ``catalog:write``. SKUs are unique (409); a new product has no stock."""
        principal.require_admin(WRITE_SCOPE)
        product = new_product(draft, self._clock())
        async with self._db.write() as conn:
            await CatalogRepository(conn).add(product)
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
        async with self._db.write() as conn:
            repo = CatalogRepository(conn)
            current = await self._locked(repo, product_id, expected_version)
            updated = current.changed(changes, self._clock())
            if updated is not current:
                _written(await repo.save(updated, current.version))
        self._forget(product_id)
        return updated

    async def delete_product(
        self, principal: Principal, product_id: str, expected_version: ExpectedVersion = None
    ) -> None:
        """Admins with ``catalog:write``; afterwards the product is 404 for everyone. Stock it
        held for orders is simply gone with it: those orders keep their own copy of the lines."""
        principal.require_admin(WRITE_SCOPE)
        async with self._db.write() as conn:
            repo = CatalogRepository(conn)
            current = await self._locked(repo, product_id, expected_version)
            _written(await repo.remove(product_id, current.version))
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
        async with self._db.write() as conn:
            repo = CatalogRepository(conn)
            current = await self._locked(repo, product_id, expected_version)
            counted = current.with_on_hand(on_hand, self._clock())
            _written(await repo.save_on_hand(counted, current.version))
        self._forget(product_id)
        return counted.stock_level

    async def get_stock(self, principal: Principal, product_id: str) -> StockLevel:
        """Admins with ``catalog:write``: on hand, reserved and available units."""
        principal.require_admin(WRITE_SCOPE)
        return (await self._existing(product_id)).stock_level

    # -- the port other contexts use (through client.py) ----------------------------------

    async def get_prices(self, product_ids: Collection[str]) -> dict[str, Product]:
        """Other contexts: current prices of the products that exist (active or not), in one
        query; ids that are unknown or malformed are simply absent from the answer."""
        wanted = {product_id for product_id in product_ids if is_valid_id(product_id)}
        if not wanted:
            return {}
        async with self._db.read() as conn:
            return await CatalogRepository(conn).get_many(wanted)

    async def reserve(
        self, order_id: str, lines: Sequence[tuple[str, int]]
    ) -> ReservationOutcome:
        """Other contexts (the order saga): hold stock for every line of an order, or none.

        Idempotent per order: asking again answers as the first time did and holds nothing
        more, and an order released (cancelled) before it was reserved holds nothing.
        """
        quantities = merge_lines(lines)
        now = self._clock()
        async with self._db.write() as conn:
            repo = CatalogRepository(conn)
            earlier = await repo.reservation(order_id)
            if earlier is not None:
                return earlier
            decision = reserve_all(await repo.get_many(quantities, lock=True), lines)
            if not isinstance(decision, Rejected):
                short = await repo.hold(order_id, decision, now)
                if short is None:
                    self._forget(*quantities)
                    return ReservationOutcome(order_id, accepted=True)
                decision = Rejected.insufficient_stock(short)
            await repo.record_rejection(order_id, decision, now)
        return ReservationOutcome(order_id, accepted=False, reason=decision.reason)

    async def release(self, order_id: str) -> None:
        """Other contexts (order cancelled): give back what the order holds. Idempotent; a
        release that arrives before its reserve makes that reserve hold nothing."""
        now = self._clock()
        async with self._db.write() as conn:
            repo = CatalogRepository(conn)
            lines = await repo.held_lines(order_id)
            if lines is None:
                await repo.record_cancellation(order_id, now)
                return
            if not lines:
                return
            products = await repo.get_many(lines, lock=True)
            await repo.give_back(order_id, release_all(products, lines), now)
        self._forget(*lines)

    # -- helpers ----------------------------------------------------------------------------

    async def _existing(self, product_id: str) -> Product:
        if not is_valid_id(product_id):
            raise NotFound("No such product.")
        async with self._db.read() as conn:
            product = await CatalogRepository(conn).get(product_id)
        if product is None:
            raise NotFound("No such product.")
        return product

    @staticmethod
    async def _locked(
        repo: CatalogRepository, product_id: str, expected: ExpectedVersion
    ) -> Product:
        """The product, locked for this transaction, if it is at an expected version."""
        product = await repo.get(product_id, lock=True) if is_valid_id(product_id) else None
        if product is None:
            raise NotFound("No such product.")
        if not product.matches(expected):
            raise PreconditionFailed("The product has changed since you read it.")
        return product

    def _forget(self, *product_ids: str) -> None:
        for product_id in product_ids:
            self._cache.pop(product_id, None)


def _written(written: bool) -> None:
    # Under the row lock a conditional write cannot miss; if one does, the product moved on.
    if not written:
        raise PreconditionFailed("The product has changed since you read it.")

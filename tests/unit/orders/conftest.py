"""The orders service under test: on the in-memory fakes and on the real store, alike.

The fake side is the orders fakes with the in-process catalog client over the catalog's fakes;
the real side is the store over the test database, with the real catalog. Neither runs the
saga's relay: a test hands the service the catalog's answer itself (:meth:`Orders.answer`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from archway.catalog.client import InProcessCatalogClient
from archway.catalog.domain import Product, ProductChanges, ProductDraft
from archway.catalog.service import CatalogService
from archway.catalog.store import CatalogRepository
from archway.kernel.auth.principal import Principal
from archway.kernel.db import Database
from archway.kernel.events.cloudevent import Event
from archway.kernel.money import Money
from archway.kernel.uow import UnitsOfWork
from archway.orders.service import Orders, OrdersService
from archway.orders.store import OrderRepository
from archway.topologies.monolith import Monolith
from tests.fakes import FakeOrders, FakeProducts, FakeUnitsOfWork

CATALOG_ADMIN = Principal("admin-1", frozenset({"catalog:write"}), frozenset({"admin"}))


@dataclass
class Shop:
    """An orders service, its catalog, and its unit of work with the repository port."""

    service: OrdersService[Any]
    catalog: CatalogService[Any]
    db: UnitsOfWork[Any]
    orders: Callable[[Any], Orders]

    async def product(
        self, sku: str, price: int = 1000, currency: str = "EUR", *, active: bool = True
    ) -> Product:
        product = await self.catalog.create_product(CATALOG_ADMIN, ProductDraft(
            sku=sku, name=f"Product {sku}", category="coffee", price=Money(price, currency)))
        if not active:
            product = await self.catalog.update_product(
                CATALOG_ADMIN, product.id, ProductChanges(active=False))
        return product

    async def position(self, order_id: str) -> int:
        """The outbox position of the newest event about the order (0: none)."""
        return await self.db.read(lambda tx: self.orders(tx).last_position(order_id))

    async def answer(self, event: Event) -> None:
        """The catalog's answer, applied as the saga's consumer applies it (one transaction)."""
        await self.db.write(lambda tx: self.service.apply_stock_answers_within(tx, [event]))


def shop_on(db: UnitsOfWork[Any], orders: Callable[[Any], Orders],
            catalog: CatalogService[Any]) -> Shop:
    service = OrdersService(db, InProcessCatalogClient(catalog), orders=orders)
    return Shop(service, catalog, db, orders)


@pytest.fixture(params=["fake", "real"])
async def shop(
    request: pytest.FixtureRequest, graph: Monolith, database: Database
) -> AsyncIterator[Shop]:
    if request.param == "fake":
        catalog = CatalogService(FakeUnitsOfWork(), products=FakeProducts, cache_ttl_seconds=0)
        yield shop_on(FakeUnitsOfWork(), FakeOrders, catalog)
    else:  # the real stores; `database` empties their tables afterwards
        catalog = CatalogService(database, products=CatalogRepository, cache_ttl_seconds=0)
        yield shop_on(database, OrderRepository, catalog)

"""Catalog fixtures on the suite's migrated database (``database`` from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from archway.catalog.domain import Product, ProductDraft
from archway.catalog.service import CatalogService
from archway.catalog.store import CatalogRepository
from archway.kernel.auth.principal import Principal
from archway.kernel.db import Database
from archway.kernel.money import Money

ADMIN = Principal("admin-1", scopes=frozenset({"catalog:write"}), roles=frozenset({"admin"}))

MakeProduct = Callable[..., Awaitable[Product]]


@pytest.fixture
def service(database: Database) -> CatalogService:
    return CatalogService(database, products=CatalogRepository)


@pytest.fixture
def make_product(service: CatalogService) -> MakeProduct:
    """``await make_product(sku, price=…, on_hand=…, **draft fields)`` → the stored product."""

    async def make(sku: str, price: int = 1000, on_hand: int = 0, **fields: object) -> Product:
        values: dict[str, object] = {
            "name": f"Product {sku}", "category": "coffee", "description": "", **fields}
        product = await service.create_product(ADMIN, ProductDraft(
            sku=sku, price=Money(price, "EUR"), **values))  # type: ignore[arg-type]
        if on_hand:
            await service.set_stock(ADMIN, product.id, on_hand)
            return await service.get_product(product.id, ADMIN)
        return product

    return make

"""A catalog service under test, and a way to make products in it (fake and real alike)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archway.catalog.domain import (
    Product,
    ProductDraft,
    ProductFilters,
    ProductSort,
)
from archway.catalog.service import CatalogService
from archway.kernel.auth.principal import Principal
from archway.kernel.money import Money
from archway.kernel.pagination import PageRequest

ADMIN = Principal("admin-1", frozenset({"catalog:write"}), frozenset({"admin"}))
CUSTOMER = Principal("user-1", frozenset({"catalog:write"}), frozenset({"customer"}))
ADMIN_WITHOUT_SCOPE = Principal("admin-2", frozenset({"profile"}), frozenset({"admin"}))
EVERYTHING = ProductFilters()
UNKNOWN = "0190a6e5-0000-7000-8000-000000000000"



@dataclass
class Shop:
    """A service and a way to make products in it, in the shape tests read best."""

    service: CatalogService

    async def product(
        self, sku: str, price: int = 1000, on_hand: int = 0, **fields: Any
    ) -> Product:
        values: dict[str, Any] = {
            "name": f"Product {sku}", "category": "coffee", "description": "", **fields}
        product = await self.service.create_product(
            ADMIN, ProductDraft(sku=sku, price=Money(price, "EUR"), **values))
        if on_hand:
            await self.service.set_stock(ADMIN, product.id, on_hand)
            return await self.service.get_product(product.id, ADMIN)
        return product

    async def stock(self, product_id: str) -> tuple[int, int]:
        level = await self.service.get_stock(ADMIN, product_id)
        return level.stock.on_hand, level.stock.reserved

    async def names(
        self, filters: ProductFilters = EVERYTHING, sort: ProductSort = ProductSort.CREATED_AT
    ) -> list[str]:
        page = await self.service.list_products(filters, sort, PageRequest(limit=100, offset=0))
        return [product.name for product in page.items]

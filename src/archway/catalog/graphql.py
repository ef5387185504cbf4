"""The catalog over GraphQL: its types, and fields that call the same service methods as
``catalog.rest`` (the service decides who may do what; this module only shapes values)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any, cast

import strawberry
from strawberry import UNSET
from strawberry.types import Info

from archway.catalog.domain import (
    Product as ProductValue,
)
from archway.catalog.domain import (
    ProductChanges,
    ProductDraft,
    ProductFilters,
    ProductSort,
    StockLevel,
)
from archway.catalog.listing import cursor_of
from archway.catalog.rest_models import MAX_PRICE_FILTER
from archway.catalog.service import CatalogService
from archway.kernel.errors import FieldError, InvalidInput
from archway.kernel.graphql.context import GraphQLContext
from archway.kernel.graphql.errors import argument
from archway.kernel.graphql.types import (
    Connection,
    Long,
    Money,
    MoneyInput,
    field,
    mutation,
    page_request,
)
from archway.kernel.pagination import DEFAULT_LIMIT
from archway.kernel.text import has_control_character

PRODUCT_LOADER = "catalog.products"
_Q_MAX, _CATEGORY_MAX = 200, 64  # as REST bounds its query parameters


@strawberry.enum(description="How products are listed; ties go by creation.")
class ProductOrder(Enum):
    CREATED_AT = "created_at"
    NAME = "name"
    PRICE = "price"
    PRICE_DESC = "-price"


@strawberry.type(description="Units on hand, held by orders, and available to sell.")
class Stock:
    product_id: strawberry.ID
    on_hand: int
    reserved: int
    available: int

    @classmethod
    def of(cls, level: StockLevel) -> Stock:
        return cls(product_id=strawberry.ID(level.product_id), on_hand=level.stock.on_hand,
                   reserved=level.stock.reserved, available=level.stock.available)


@strawberry.type(description="A product of the catalog.")
class Product:
    id: strawberry.ID
    sku: str
    name: str
    description: str
    category: str
    price: Money
    active: bool
    available: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, product: ProductValue) -> Product:
        return cls(
            id=strawberry.ID(product.id), sku=product.sku, name=product.name,
            description=product.description, category=product.category,
            price=Money.of(product.price), active=product.active, available=product.available,
            created_at=product.created_at, updated_at=product.updated_at)


@strawberry.input
class NewProduct:
    sku: str
    name: str
    category: str
    price: MoneyInput
    description: str = ""
    active: bool = True

    def draft(self) -> ProductDraft:
        return ProductDraft(
            sku=self.sku, name=self.name, category=self.category,
            price=self.price.value(("price",)), description=self.description,
            active=self.active)


@strawberry.input(description="The fields to change; an absent field stays as it is (no field "
                  "of a product may be null).")
class ProductPatch:
    sku: str | None = UNSET
    name: str | None = UNSET
    description: str | None = UNSET
    category: str | None = UNSET
    price: MoneyInput | None = UNSET
    active: bool | None = UNSET

    def changes(self) -> ProductChanges:
        """As REST's PATCH: an absent field is unchanged, an explicit null is refused."""
        given = {name: getattr(self, name) for name in
                 ("sku", "name", "description", "category", "price", "active")}
        nulls = [FieldError((name,), "may not be null") for name, v in given.items() if v is None]
        if nulls:
            raise InvalidInput(None, nulls)
        kept = {name: None if v is UNSET else v for name, v in given.items()}
        price = kept.pop("price")
        return ProductChanges(**kept, price=price.value(("price",)) if price else None)


def catalog(info: Info[GraphQLContext, Any]) -> CatalogService[Any]:
    return cast("CatalogService[Any]", info.context.services["catalog"])


async def load_products(
    info: Info[GraphQLContext, Any], product_ids: Sequence[str]
) -> list[Product | None]:
    """The products with these ids as the caller may see them, in one batch per request tick
    (``None`` for one the caller may not see: deleted, or off sale to a non-admin)."""
    context = info.context
    service = catalog(info)

    async def load(ids: list[str]) -> list[Product | None]:
        found = await service.visible_products(ids, context.optional_caller)
        return [Product.of(found[i]) if i in found else None for i in ids]

    return await context.loader(PRODUCT_LOADER, load).load_many(list(product_ids))


def _filters(
    q: str | None, category: str | None, min_price: int | None, max_price: int | None
) -> ProductFilters:
    for name, text, limit in (("q", q, _Q_MAX), ("category", category, _CATEGORY_MAX)):
        if text is not None and (len(text) > limit or has_control_character(text)):
            raise InvalidInput.field(
                name, f"must be at most {limit} characters, no control characters")
    for name, bound in (("minPrice", min_price), ("maxPrice", max_price)):
        if bound is not None and not 0 <= bound <= MAX_PRICE_FILTER:
            raise InvalidInput.field(name, f"must be 0 to {MAX_PRICE_FILTER} minor units")
    return ProductFilters(q=q, category=category, min_price=min_price, max_price=max_price)


@strawberry.type
class CatalogQuery:
    @field("A product on sale (admins with catalog:write: any).")
    async def product(self, info: Info[GraphQLContext, Any], id: strawberry.ID) -> Product:
        return Product.of(await catalog(info).get_product(str(id), info.context.optional_caller))

    @field("The products on sale, filtered and sorted, a page at a time.")
    async def products(
        self,
        info: Info[GraphQLContext, Any],
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
        q: str | None = None,
        category: str | None = None,
        min_price: Long | None = None,
        max_price: Long | None = None,
        sort: ProductOrder = ProductOrder.CREATED_AT,
    ) -> Connection[Product]:
        order = ProductSort(sort.value)
        page = page_request(first, after, cursor_arity=2)
        filters = _filters(q, category, min_price, max_price)
        result = await catalog(info).list_products(filters, order, page)
        return Connection.of(result, Product.of, lambda product: cursor_of(order, product))


@strawberry.type
class CatalogMutation:
    @mutation("Admins with catalog:write. SKUs are unique.")
    async def create_product(self, info: Info[GraphQLContext, Any], input: NewProduct) -> Product:
        caller = info.context.caller
        with argument("input"):
            return Product.of(await catalog(info).create_product(caller, input.draft()))

    @mutation("Admins with catalog:write: change some fields.")
    async def update_product(
        self, info: Info[GraphQLContext, Any], id: strawberry.ID, input: ProductPatch
    ) -> Product:
        caller = info.context.caller
        with argument("input"):
            changed = await catalog(info).update_product(caller, str(id), input.changes())
        return Product.of(changed)

    @mutation("Admins with catalog:write: a stock count.")
    async def set_stock(
        self, info: Info[GraphQLContext, Any], id: strawberry.ID, on_hand: int
    ) -> Stock:
        caller = info.context.caller
        return Stock.of(await catalog(info).set_stock(caller, str(id), on_hand))

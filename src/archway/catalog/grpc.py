"""The catalog over gRPC (``archway.catalog.v1.CatalogService``): thin, like ``rest.py``: read
the request, call the service with the caller's principal, shape the answer. The guard
(``kernel.grpc.server``) authenticates and maps every refusal. Request values are bounded as
REST's schemas bound them; the domain judges the rest."""

from __future__ import annotations

from typing import Any

from archway.catalog.domain import Product, ProductDraft, ProductFilters, ProductSort, StockLevel
from archway.catalog.rest_models import MAX_PRICE_FILTER
from archway.catalog.service import CatalogService
from archway.kernel.errors import FieldError, InvalidInput
from archway.kernel.grpc.messages import (
    money_message,
    money_of,
    next_page_token,
    page_request,
    timestamp,
)
from archway.kernel.grpc.server import Registration, Served, caller, optional_caller
from archway.kernel.ratelimit.policy import RouteClass
from archway.kernel.text import has_control_character
from archway.proto.catalog.v1 import catalog_pb2, catalog_pb2_grpc

SERVICE_NAME = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name
READS, WRITES = RouteClass.READS, RouteClass.WRITES
ROUTE_CLASSES = {
    "GetProduct": READS, "ListProducts": READS, "BatchGetProducts": READS,
    "CreateProduct": WRITES, "SetStock": WRITES,
}
"""What the rate limits count each method as (REST's reads and writes; the server refuses to
start when a method of the service is missing here)."""
_SORTS = {
    catalog_pb2.PRODUCT_SORT_UNSPECIFIED: ProductSort.CREATED_AT,
    catalog_pb2.PRODUCT_SORT_CREATED_AT: ProductSort.CREATED_AT,
    catalog_pb2.PRODUCT_SORT_NAME: ProductSort.NAME,
    catalog_pb2.PRODUCT_SORT_PRICE: ProductSort.PRICE,
    catalog_pb2.PRODUCT_SORT_PRICE_DESC: ProductSort.PRICE_DESC,
}
_FILTER_TEXT_MAX = {"q": 200, "category": 64}


def product_message(product: Product) -> catalog_pb2.Product:
    return catalog_pb2.Product(
        id=product.id, sku=product.sku, name=product.name, description=product.description,
        category=product.category, price=money_message(product.price), active=product.active,
        available=product.available, created_at=timestamp(product.created_at),
        updated_at=timestamp(product.updated_at), version=product.version)


def stock_message(level: StockLevel) -> catalog_pb2.Stock:
    return catalog_pb2.Stock(
        product_id=level.product_id, on_hand=level.stock.on_hand,
        reserved=level.stock.reserved, available=level.stock.available, version=level.version)


def list_query(request: catalog_pb2.ListProductsRequest) -> tuple[ProductFilters, ProductSort]:
    """The filters and sort of a list request, bounded as REST's query parameters are."""
    errors = []
    for name, limit in _FILTER_TEXT_MAX.items():
        text: str = getattr(request, name)
        if len(text) > limit or has_control_character(text):
            errors.append(FieldError(
                (name,), f"must be at most {limit} characters, no control characters"))
    prices = {}
    for name in ("min_price", "max_price"):
        if request.HasField(name):
            prices[name] = getattr(request, name)
            if not 0 <= prices[name] <= MAX_PRICE_FILTER:
                errors.append(FieldError((name,), f"must be 0 to {MAX_PRICE_FILTER} minor units"))
    sort = _SORTS.get(request.sort)
    if sort is None:
        errors.append(FieldError(("sort",), "is not a ProductSort value"))
    if errors:
        raise InvalidInput(errors[0].detail if len(errors) == 1 else None, errors)
    assert sort is not None
    filters = ProductFilters(
        q=request.q or None, category=request.category or None,
        min_price=prices.get("min_price"), max_price=prices.get("max_price"))
    return filters, sort


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):  # type: ignore[misc]  # generated
    def __init__(self, service: CatalogService[Any]) -> None:
        self._service = service

    async def GetProduct(
        self, request: catalog_pb2.GetProductRequest, context: object
    ) -> catalog_pb2.GetProductResponse:
        product = await self._service.get_product(request.id, optional_caller())
        return catalog_pb2.GetProductResponse(product=product_message(product))

    async def ListProducts(
        self, request: catalog_pb2.ListProductsRequest, context: object
    ) -> catalog_pb2.ListProductsResponse:
        filters, sort = list_query(request)
        page = page_request(request.page_size, request.page_token, cursor_arity=2)
        result = await self._service.list_products(filters, sort, page)
        return catalog_pb2.ListProductsResponse(
            products=[product_message(product) for product in result.items],
            next_page_token=next_page_token(result))

    async def BatchGetProducts(
        self, request: catalog_pb2.BatchGetProductsRequest, context: object
    ) -> catalog_pb2.BatchGetProductsResponse:
        products = await self._service.get_products(list(request.ids), optional_caller())
        return catalog_pb2.BatchGetProductsResponse(
            products=[product_message(product) for product in products])

    async def CreateProduct(
        self, request: catalog_pb2.CreateProductRequest, context: object
    ) -> catalog_pb2.CreateProductResponse:
        principal = caller()
        principal.require_admin("catalog:write")  # before the body is judged, as REST does
        if not request.HasField("price"):
            raise InvalidInput.field("price", "is required")
        draft = ProductDraft(
            sku=request.sku, name=request.name, category=request.category,
            price=money_of(request.price, "price"), description=request.description,
            active=request.active if request.HasField("active") else True)
        product = await self._service.create_product(principal, draft)
        return catalog_pb2.CreateProductResponse(product=product_message(product))

    async def SetStock(
        self, request: catalog_pb2.SetStockRequest, context: object
    ) -> catalog_pb2.SetStockResponse:
        principal = caller()
        principal.require_admin("catalog:write")
        expected = request.expected_version if request.HasField("expected_version") else None
        level = await self._service.set_stock(
            principal, request.product_id, request.on_hand, expected)
        return catalog_pb2.SetStockResponse(stock=stock_message(level))


def register(service: CatalogService[Any]) -> Registration:
    """A :data:`~archway.kernel.grpc.server.Registration` of the catalog service."""

    def add(server: Any) -> Served:
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(service), server)
        return Served(SERVICE_NAME, ROUTE_CLASSES)

    return add

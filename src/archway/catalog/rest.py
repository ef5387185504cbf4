"""Catalog over REST: thin routes that parse, call the service and shape the answer.

The two API versions differ only in how money is written and how lists are paged, so one
``build_router`` serves both; the body models and money parsing per version live in
:mod:`archway.catalog.rest_models`. (No ``from __future__ import annotations`` here: FastAPI
reads the version's body models from the route signatures, which must be real objects.)
"""

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from archway.catalog.domain import Product, ProductFilters, ProductSort, StockLevel
from archway.catalog.rest_models import StockCount, StockOut, VersionModels, models_for
from archway.catalog.service import CatalogService
from archway.kernel.auth.principal import Principal
from archway.kernel.http.conditional import entity_tag, if_match_versions, none_match
from archway.kernel.http.fast_lane import FastRoute, plain_query
from archway.kernel.http.guard import (
    accepts_token,
    current_principal,
    optional_principal,
    requires,
)
from archway.kernel.http.responses import (
    JsonResponse,
    RenderedStates,
    money,
    page_request_dependency,
    page_response,
    plain_page,
    timestamp,
)
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.pagination import PageRequest
from archway.kernel.text import NO_CONTROL_PATTERN

Caller = Annotated[Principal, Depends(current_principal)]
MaybeCaller = Annotated[Principal | None, Depends(optional_principal)]
IfMatch = Annotated[str | None, Header(
    alias="If-Match",
    description="An `ETag` of the product: the write happens only if it is still current "
    "(else 412). `*` matches any existing product.",
)]


def _refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the refusals a route may answer (bodies are problem+json)."""
    meanings = {
        304: "`If-None-Match` named the current `ETag`; no body.",
        404: "No such product (or not on sale, or deleted).",
        409: "Another product has this sku.",
        412: "`If-Match` named no current `ETag`.",
    }
    return {status: {"description": meanings[status]} for status in statuses}


def _doc(use_case: Callable[..., object]) -> str:
    """A use case's docstring, which states its rule and who may call it, as Markdown."""
    return inspect.cleandoc(use_case.__doc__ or "").replace("``", "`")


def product_body(version: ApiVersion, product: Product) -> dict[str, Any]:
    return {
        "id": product.id, "sku": product.sku, "name": product.name,
        "description": product.description, "category": product.category,
        **money(version, "price", product.price.amount, product.price.currency),
        "active": product.active, "available": product.available,
        "created_at": timestamp(product.created_at),
        "updated_at": timestamp(product.updated_at),
    }


def stock_body(level: StockLevel) -> dict[str, Any]:
    return {
        "product_id": level.product_id, "on_hand": level.stock.on_hand,
        "reserved": level.stock.reserved, "available": level.stock.available,
    }


def build_router(
    version: ApiVersion,
    service: CatalogService[Any],
    route_class: type[APIRoute],
    *,
    max_age: int = 60,
    fast_routes: list[FastRoute] | None = None,
) -> APIRouter:
    """The catalog routes of one API version; it carries its version prefix. The hot public
    reads also get fast handlers (see :mod:`archway.kernel.http.fast_lane`), added to
    ``fast_routes`` when a list is given."""
    router = APIRouter(prefix=version.prefix, route_class=route_class, tags=["products"])
    models: VersionModels = models_for(version)
    page_params = page_request_dependency(version, cursor_arity=2)
    cache_control = f"public, max-age={max_age}"
    # The public reads' representation of each product version, rendered once: the hottest
    # routes then only copy bytes (a change of the product or its stock is a new version).
    rendered: RenderedStates[Product] = RenderedStates(
        lambda product: product_body(version, product),
                              lambda product: (product.id, product.version))

    def product_response(product: Product, status: int = 200, **headers: str) -> Response:
        return JsonResponse(
            product_body(version, product), status,
            headers={"ETag": entity_tag(product.version, version), **headers},
        )

    def stock_response(level: StockLevel) -> Response:
        return JsonResponse(
            stock_body(level), headers={"ETag": entity_tag(level.version, version)})

    @router.get(
        "/products", response_model=models.page, summary="List products on sale",
        description=_doc(CatalogService.list_products),
    )
    async def list_products(
        request: Request,
        prices: Annotated[tuple[int | None, int | None], Depends(models.price_bounds)],
        page: Annotated[PageRequest, Depends(page_params)],
        q: Annotated[str | None, Query(
            max_length=200, pattern=NO_CONTROL_PATTERN,
            description="Words in the name or description (any case).")] = None,
        category: Annotated[str | None, Query(max_length=64, pattern=NO_CONTROL_PATTERN)] = None,
        sort: Annotated[ProductSort, Query(
            description="`-` sorts descending; ties go by creation.")] = ProductSort.CREATED_AT,
    ) -> Response:
        filters = ProductFilters(q=q, category=category, min_price=prices[0], max_price=prices[1])
        return await product_list(request, filters, sort, page)

    async def product_list(
        request: Request, filters: ProductFilters, sort: ProductSort, page: PageRequest
    ) -> Response:
        result = await service.list_products(filters, sort, page)
        items = [rendered(product) for product in result.items]
        return page_response(version, request, result, page, items)

    @router.get(
        "/products/{product_id}", response_model=models.product, summary="A product",
        description=_doc(CatalogService.get_product), responses=_refusals(304, 404),
        **accepts_token("catalog:write"),
    )
    async def get_product(product_id: str, request: Request, caller: MaybeCaller) -> Response:
        return await product_page(product_id, request, caller)

    async def product_page(
        product_id: str, request: Request, caller: Principal | None
    ) -> Response:
        product = await service.get_product(product_id, caller)
        etag = entity_tag(product.version, version)
        # What a token holder sees may differ (an admin sees products off sale): not shared.
        headers = {"ETag": etag, "Cache-Control": cache_control if caller is None else "private"}
        if none_match(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return JsonResponse(rendered(product), headers=headers)

    @router.post(
        "/products", status_code=201, response_model=models.product, summary="Create a product",
        description=_doc(CatalogService.create_product), responses=_refusals(409),
        **requires("catalog:write", admin=True),
    )
    async def create_product(
        body: models.create,  # type: ignore[name-defined]  # the version's model, read by FastAPI
        caller: Caller,
    ) -> Response:
        product = await service.create_product(caller, body.draft())
        return product_response(
            product, 201, Location=f"{version.prefix}/products/{product.id}")

    @router.patch(
        "/products/{product_id}", response_model=models.product, summary="Change a product",
        description=_doc(CatalogService.update_product), responses=_refusals(404, 409, 412),
        **requires("catalog:write", admin=True),
    )
    async def update_product(
        product_id: str,
        body: models.patch,  # type: ignore[name-defined]  # the version's model, read by FastAPI
        caller: Caller,
        if_match: IfMatch = None,
    ) -> Response:
        product = await service.update_product(
            caller, product_id, body.changes(), if_match_versions(if_match))
        return product_response(product)

    @router.delete(
        "/products/{product_id}", status_code=204, summary="Delete a product",
        description=_doc(CatalogService.delete_product), responses=_refusals(404, 412),
        **requires("catalog:write", admin=True),
    )
    async def delete_product(product_id: str, caller: Caller, if_match: IfMatch = None) -> Response:
        await service.delete_product(caller, product_id, if_match_versions(if_match))
        return Response(status_code=204)

    @router.put(
        "/products/{product_id}/stock", response_model=StockOut, summary="Count stock",
        description=_doc(CatalogService.set_stock), responses=_refusals(404, 412),
        **requires("catalog:write", admin=True),
    )
    async def set_stock(
        product_id: str, body: StockCount, caller: Caller, if_match: IfMatch = None
    ) -> Response:
        level = await service.set_stock(
            caller, product_id, body.on_hand, if_match_versions(if_match))
        return stock_response(level)

    @router.get(
        "/products/{product_id}/stock", response_model=StockOut, summary="A product's stock",
        description=_doc(CatalogService.get_stock), responses=_refusals(404),
        **requires("catalog:write", admin=True),
    )
    async def get_stock(product_id: str, caller: Caller) -> Response:
        return stock_response(await service.get_stock(caller, product_id))

    async def fast_product(request: Request, params: dict[str, str]) -> Response | None:
        if "authorization" in request.headers or plain_query(request, ()) is None:
            return None
        return await product_page(params["product_id"], request, None)

    async def fast_list(request: Request, _params: dict[str, str]) -> Response | None:
        page = plain_page(version, request, cursor_arity=2)
        if page is None:
            return None
        return await product_list(request, ProductFilters(), ProductSort.CREATED_AT, page)

    if fast_routes is not None:
        fast_routes += [FastRoute(f"{version.prefix}/products", fast_list),
                        FastRoute(f"{version.prefix}/products/{{product_id}}", fast_product)]
    return router

"""Orders over REST: thin routes; commands answer from the write model, reads (the orders and
the sales reports) from projections.

(No ``from __future__ import annotations``: FastAPI reads the body models from the signatures.)
"""

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.responses import Response

from archway.kernel.auth.principal import Principal
from archway.kernel.http.fast_lane import FastRoute
from archway.kernel.http.guard import Owner, admitted, current_principal, requires
from archway.kernel.http.idempotency import KEY_PATTERN as IDEMPOTENCY_KEY_PATTERN
from archway.kernel.http.idempotency import keeps_idempotency_key
from archway.kernel.http.responses import (
    JsonResponse,
    RenderedStates,
    money,
    page_request_dependency,
    page_response,
    plain_page,
)
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.pagination import PageRequest
from archway.orders.consistency import STALE_HEADER, TOKEN_HEADER, ReadYourWrites, decode_token
from archway.orders.consistency import encode_token as consistency_token
from archway.orders.queries import OrderQueries, OrderView, view_of
from archway.orders.report_queries import (
    TOP_PRODUCTS_DEFAULT,
    TOP_PRODUCTS_MAX,
    CustomerSummary,
    ProductSales,
    ReportQueries,
)
from archway.orders.rest_models import (
    CustomerSummaryV1,
    CustomerSummaryV2,
    OrderPageV1,
    OrderPageV2,
    OrderV1,
    OrderV2,
    PlaceOrder,
    TopProductsV1,
    TopProductsV2,
)
from archway.orders.service import OrdersService

Caller = Annotated[Principal, Depends(current_principal)]
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN,
    description="Retries with the same key place one order: the first answer is replayed "
    "(`Idempotent-Replayed: true`); the key is also kept with the order itself.")]
TOKEN_DOC = (
    "A command's `Consistency-Token`: the answer waits (bounded) until it reflects that "
    "command, else carries `Consistency: stale`.")


def consistency_dependency(freshness: ReadYourWrites) -> Callable[..., Any]:
    """A dependency for queries: waits for the read models when the request carries a
    consistency token, and yields the headers to add (``Consistency: stale`` if it gave up)."""

    async def read_your_writes(
        token: Annotated[str | None, Header(alias=TOKEN_HEADER, description=TOKEN_DOC)] = None,
    ) -> dict[str, str]:
        if token is None:
            return {}
        return {} if await freshness.wait(decode_token(token)) else {STALE_HEADER: "stale"}

    return read_your_writes


def doc_of(use_case: Callable[..., object]) -> str:
    return inspect.cleandoc(use_case.__doc__ or "").replace("``", "`")


def _refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meanings = {
        400: "The `Consistency-Token` header is not one this API issued.",
        404: "No such order (or not yours).",
        409: "The order cannot be cancelled in its state.",
    }
    return {status: {"description": meanings[status]} for status in statuses}


def order_body(version: ApiVersion, order: OrderView) -> dict[str, Any]:
    currency = order.currency
    return {
        "id": order.id, "customer_id": order.customer_id, "status": order.status,
        "lines": [
            {
                "product_id": line.product_id, "sku": line.sku, "name": line.name,
                "quantity": line.quantity,
                **money(version, "unit_price", line.unit_price.amount, currency),
                **money(version, "line_total", line.total.amount, currency),
            }
            for line in order.lines
        ],
        **money(version, "total", order.total, currency),
        "rejection_reason": order.rejection_reason,
        "placed_at": order.placed_at, "updated_at": order.updated_at,
    }


def build_router(
    version: ApiVersion,
    service: OrdersService[Any],
    queries: OrderQueries,
    route_class: type[APIRoute],
    freshness: ReadYourWrites,
    *,
    fast_routes: list[FastRoute] | None = None,
) -> APIRouter:
    """The order routes of one API version; it carries its version prefix. Placing an order
    and listing one's orders also get a fast handler (see
    :mod:`archway.kernel.http.fast_lane`), added to ``fast_routes`` when a list is given."""
    router = APIRouter(prefix=version.prefix, route_class=route_class, tags=["orders"])
    v1 = version is ApiVersion.V1
    order_model = OrderV1 if v1 else OrderV2
    page_model = OrderPageV1 if v1 else OrderPageV2
    page_params = page_request_dependency(version, cursor_arity=1)
    Fresh = Annotated[dict[str, str], Depends(consistency_dependency(freshness))]
    # (id, version) names one state of an order: each is rendered once per API version.
    rendered: RenderedStates[OrderView] = RenderedStates(
        lambda order: order_body(version, order), lambda order: (order.id, order.version))

    def command_headers(order_id: str, position: int) -> dict[str, str]:
        return {"Location": f"{version.prefix}/orders/{order_id}",
                TOKEN_HEADER: consistency_token(position)}

    @router.post(
        "/orders", status_code=202, response_model=order_model, summary="Place an order",
        description=doc_of(OrdersService.place), responses={409: {"description": (
            "A line names a product not on sale, or one priced in another currency than the "
            "order (`/problems/unavailable`, its `errors` name the lines); or a request with "
            "this `Idempotency-Key` is in flight or took effect.")}},
        **requires("orders:write"),
    )
    @keeps_idempotency_key
    async def place_order(
        body: PlaceOrder, caller: Caller, idempotency_key: IdempotencyKey = None
    ) -> Response:
        return await placed(caller, body, idempotency_key)

    async def placed(caller: Principal, body: PlaceOrder, key: str | None) -> Response:
        done = await service.place(caller, body.requested(), key)
        return JsonResponse(rendered(view_of(done.order)), 202,
                            headers=command_headers(done.order.id, done.position))

    async def fast_place(request: Request, _params: dict[str, str]) -> Response | None:
        # Declines (None) only before placing: see the lane's rule.
        if request.headers.get("content-type") != "application/json":
            return None
        caller = await admitted(route_class, request, "orders:write")
        if caller is None:
            return None
        try:
            body = PlaceOrder.model_validate_json(await request.body())
        except ValidationError:
            return None
        return await placed(caller, body, request.headers.get("idempotency-key"))

    @router.post(
        "/orders/{order_id}/cancel", status_code=202, response_model=order_model,
        summary="Cancel an order", description=doc_of(OrdersService.cancel),
        responses=_refusals(404, 409), **requires("orders:write"),
    )
    async def cancel_order(order_id: str, caller: Caller) -> Response:
        done = await service.cancel(caller, order_id)
        return JsonResponse(rendered(view_of(done.order)), 202,
                            headers=command_headers(done.order.id, done.position))

    @router.get(
        "/orders", response_model=page_model, summary="List orders",
        description=doc_of(OrderQueries.list_orders), responses=_refusals(400),
        **requires("orders:read"),
    )
    async def list_orders(
        request: Request, caller: Caller, page: Annotated[PageRequest, Depends(page_params)],
        fresh: Fresh,
    ) -> Response:
        response = await order_list(request, caller, page)
        response.headers.update(fresh)
        return response

    async def order_list(request: Request, caller: Principal, page: PageRequest) -> Response:
        result = await queries.list_orders(caller, page)
        items = [rendered(order) for order in result.items]
        return page_response(version, request, result, page, items)

    async def fast_list(request: Request, _params: dict[str, str]) -> Response | None:
        if TOKEN_HEADER.lower() in request.headers:  # waiting for a command: the route's way
            return None
        caller = await admitted(route_class, request, "orders:read")
        page = plain_page(version, request, cursor_arity=1)
        if caller is None or page is None:
            return None
        return await order_list(request, caller, page)

    @router.get(
        "/orders/{order_id}", response_model=order_model, summary="An order",
        description=doc_of(OrderQueries.get_order), responses=_refusals(400, 404),
        **requires("orders:read"),
    )
    async def get_order(order_id: str, caller: Caller, fresh: Fresh) -> Response:
        order = await queries.get_order(caller, order_id)
        return JsonResponse(rendered(order), headers=fresh)

    if fast_routes is not None:
        fast_routes.append(FastRoute(f"{version.prefix}/orders", fast_list))
        fast_routes.append(FastRoute(f"{version.prefix}/orders", fast_place, method="POST"))
    return router


_REPORT_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The `Consistency-Token` header is not one this API issued."},
}


def product_row(version: ApiVersion, row: ProductSales) -> dict[str, Any]:
    return {
        "product_id": row.product_id, "units_sold": row.units_sold,
        **money(version, "revenue", row.revenue.amount, row.revenue.currency),
    }


def summary_body(version: ApiVersion, summary: CustomerSummary) -> dict[str, Any]:
    spent = summary.total_spent
    return {
        "customer_id": summary.customer_id, "orders_count": summary.orders_count,
        **money(version, "total_spent", spent.amount, spent.currency),
    }


def build_reports_router(
    version: ApiVersion,
    reports: ReportQueries,
    route_class: type[APIRoute],
    freshness: ReadYourWrites,
) -> APIRouter:
    """The sales reports of one API version (read models only, like every order query, and
    they honour a ``Consistency-Token`` too); it carries its version prefix."""
    router = APIRouter(prefix=version.prefix, route_class=route_class, tags=["reports"])
    v1 = version is ApiVersion.V1
    Fresh = Annotated[dict[str, str], Depends(consistency_dependency(freshness))]

    @router.get(
        "/reports/top-products", response_model=TopProductsV1 if v1 else TopProductsV2,
        summary="Best-selling products", description=doc_of(ReportQueries.top_products),
        responses=_REPORT_REFUSALS, **requires("reports:read", api_key=True),
    )
    async def top_products(
        caller: Caller, fresh: Fresh,
        limit: Annotated[int, Query(ge=1, le=TOP_PRODUCTS_MAX, description="Rows.")]
        = TOP_PRODUCTS_DEFAULT,
    ) -> Response:
        rows = await reports.top_products(caller, limit)
        key = "items" if v1 else "data"  # each version's name for a list
        return JsonResponse({key: [product_row(version, row) for row in rows]}, headers=fresh)

    @router.get(
        "/reports/customers/{customer_id}",
        response_model=CustomerSummaryV1 if v1 else CustomerSummaryV2,
        summary="A customer's orders and spending",
        description=doc_of(ReportQueries.customer_summary),
        responses={**_REPORT_REFUSALS, 404: {"description": "Not a customer id."}},
        **requires("orders:read", owner=Owner("customer_id", "orders:read", "orders:read")),
    )
    async def customer_summary(customer_id: str, caller: Caller, fresh: Fresh) -> Response:
        summary = await reports.customer_summary(caller, customer_id)
        return JsonResponse(summary_body(version, summary), headers=fresh)

    return router

"""Orders over REST: thin routes; commands answer from the write model, reads from projections.

(No ``from __future__ import annotations``: FastAPI reads the body models from the signatures.)
"""

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from archway.kernel.auth.principal import Principal
from archway.kernel.http.guard import current_principal, requires
from archway.kernel.http.responses import (
    JsonResponse,
    money,
    page_request_dependency,
    page_response,
    timestamp,
)
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.pagination import PageRequest
from archway.orders.queries import OrderQueries, OrderView, view_of
from archway.orders.rest_models import OrderPageV1, OrderPageV2, OrderV1, OrderV2, PlaceOrder
from archway.orders.service import OrdersService

Caller = Annotated[Principal, Depends(current_principal)]


def _doc(use_case: Callable[..., object]) -> str:
    return inspect.cleandoc(use_case.__doc__ or "").replace("``", "`")


def _refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meanings = {
        404: "No such order (or not yours).",
        409: "The order cannot be cancelled in its state.",
    }
    return {status: {"description": meanings[status]} for status in statuses}


def order_body(version: ApiVersion, order: OrderView) -> dict[str, Any]:
    currency = order.total.currency
    return {
        "id": order.id, "customer_id": order.customer_id, "status": str(order.status),
        "lines": [
            {
                "product_id": line.product_id, "sku": line.sku, "name": line.name,
                "quantity": line.quantity,
                **money(version, "unit_price", line.unit_price.amount, currency),
                **money(version, "line_total", line.total.amount, currency),
            }
            for line in order.lines
        ],
        **money(version, "total", order.total.amount, currency),
        "rejection_reason": order.rejection_reason,
        "placed_at": timestamp(order.placed_at), "updated_at": timestamp(order.updated_at),
    }


def build_router(
    version: ApiVersion,
    service: OrdersService,
    queries: OrderQueries,
    route_class: type[APIRoute],
) -> APIRouter:
    """The order routes of one API version; it carries its version prefix."""
    router = APIRouter(prefix=version.prefix, route_class=route_class, tags=["orders"])
    v1 = version is ApiVersion.V1
    order_model = OrderV1 if v1 else OrderV2
    page_model = OrderPageV1 if v1 else OrderPageV2
    page_params = page_request_dependency(version, cursor_arity=1)

    def location(order_id: str) -> str:
        return f"{version.prefix}/orders/{order_id}"

    @router.post(
        "/orders", status_code=202, response_model=order_model, summary="Place an order",
        description=_doc(OrdersService.place_order), **requires("orders:write"),
    )
    async def place_order(body: PlaceOrder, caller: Caller) -> Response:
        order = await service.place_order(caller, body.requested())
        return JsonResponse(
            order_body(version, view_of(order)), 202, headers={"Location": location(order.id)})

    @router.post(
        "/orders/{order_id}/cancel", status_code=202, response_model=order_model,
        summary="Cancel an order", description=_doc(OrdersService.cancel_order),
        responses=_refusals(404, 409), **requires("orders:write"),
    )
    async def cancel_order(order_id: str, caller: Caller) -> Response:
        order = await service.cancel_order(caller, order_id)
        return JsonResponse(
            order_body(version, view_of(order)), 202, headers={"Location": location(order.id)})

    @router.get(
        "/orders", response_model=page_model, summary="List orders",
        description=_doc(OrderQueries.list_orders), **requires("orders:read"),
    )
    async def list_orders(
        request: Request, caller: Caller, page: Annotated[PageRequest, Depends(page_params)]
    ) -> Response:
        result = await queries.list_orders(caller, page)
        items = [order_body(version, order) for order in result.items]
        return page_response(version, request, result, page, items)

    @router.get(
        "/orders/{order_id}", response_model=order_model, summary="An order",
        description=_doc(OrderQueries.get_order), responses=_refusals(404),
        **requires("orders:read"),
    )
    async def get_order(order_id: str, caller: Caller) -> Response:
        return JsonResponse(order_body(version, await queries.get_order(caller, order_id)))

    return router

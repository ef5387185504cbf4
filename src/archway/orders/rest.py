"""Orders over REST: thin routes; commands answer from the write model, reads from projections.

(No ``from __future__ import annotations``: FastAPI reads the body models from the signatures.)
"""

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.responses import Response

from archway.kernel.auth.principal import Principal
from archway.kernel.http.fast_lane import FastRoute
from archway.kernel.http.guard import admitted, current_principal, requires
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
from archway.orders.rest_models import OrderPageV1, OrderPageV2, OrderV1, OrderV2, PlaceOrder
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

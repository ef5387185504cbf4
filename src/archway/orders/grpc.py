"""Orders over gRPC (``archway.orders.v1.OrderService``): thin, like ``rest.py``: commands go
to the service and answer from the write model, reads (and watches) go to the read side. The
guard (``kernel.grpc.server``) authenticates and maps every refusal."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from archway.kernel.errors import FieldError, InvalidInput
from archway.kernel.grpc.messages import (
    minor_units,
    next_page_token,
    page_request,
    rfc3339_timestamp,
)
from archway.kernel.grpc.server import Registration, Served, caller
from archway.kernel.http.idempotency import KEY_PATTERN
from archway.kernel.ratelimit.policy import RouteClass
from archway.orders.consistency import ReadYourWrites, decode_token, encode_token
from archway.orders.domain import LineRequest, OrderStatus
from archway.orders.queries import READ_SCOPE, OrderQueries, OrderView, view_of
from archway.orders.service import WRITE_SCOPE, OrdersService
from archway.proto.orders.v1 import orders_pb2, orders_pb2_grpc

SERVICE_NAME = orders_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
READS, WRITES = RouteClass.READS, RouteClass.WRITES
ROUTE_CLASSES = {
    "PlaceOrder": WRITES, "CancelOrder": WRITES,
    "GetOrder": READS, "ListOrders": READS, "WatchOrder": READS,  # a watch counts at its start
}
"""What the rate limits count each method as (REST's reads and writes; the server refuses to
start when a method of the service is missing here)."""
_STATUSES = {
    OrderStatus.PENDING.value: orders_pb2.ORDER_STATUS_PENDING,
    OrderStatus.CONFIRMED.value: orders_pb2.ORDER_STATUS_CONFIRMED,
    OrderStatus.REJECTED.value: orders_pb2.ORDER_STATUS_REJECTED,
    OrderStatus.CANCELLED.value: orders_pb2.ORDER_STATUS_CANCELLED,
}
_KEY = re.compile(KEY_PATTERN)
_PRODUCT_ID_MAX = 36  # as REST's schema bounds it


def order_message(view: OrderView) -> orders_pb2.Order:
    lines = [
        orders_pb2.OrderLine(
            product_id=line.product_id, sku=line.sku, name=line.name, quantity=line.quantity,
            unit_price=minor_units(line.unit_price.amount, view.currency),
            line_total=minor_units(line.total.amount, view.currency))
        for line in view.lines]
    message = orders_pb2.Order(
        id=view.id, customer_id=view.customer_id, status=_STATUSES[view.status], lines=lines,
        total=minor_units(view.total, view.currency),
        placed_at=rfc3339_timestamp(view.placed_at), updated_at=rfc3339_timestamp(view.updated_at),
        version=view.version)
    if view.rejection_reason is not None:
        message.rejection_reason = view.rejection_reason
    return message


def requested_lines(request: orders_pb2.PlaceOrderRequest) -> list[LineRequest]:
    """The lines asked for, bounded as REST's schema bounds them (the domain judges the rest)."""
    errors = [
        FieldError(("lines", index, "product_id"), f"must be at most {_PRODUCT_ID_MAX} characters")
        for index, line in enumerate(request.lines) if len(line.product_id) > _PRODUCT_ID_MAX]
    if request.idempotency_key and not _KEY.fullmatch(request.idempotency_key):
        errors.append(FieldError(
            ("idempotency_key",), "must be 1 to 255 visible ASCII characters"))
    if errors:
        raise InvalidInput(errors[0].detail if len(errors) == 1 else None, errors)
    return [LineRequest(line.product_id, line.quantity) for line in request.lines]


class OrderServicer(orders_pb2_grpc.OrderServiceServicer):  # type: ignore[misc]  # generated
    def __init__(
        self, service: OrdersService[Any], queries: OrderQueries, freshness: ReadYourWrites
    ) -> None:
        self._service = service
        self._queries = queries
        self._freshness = freshness

    async def PlaceOrder(
        self, request: orders_pb2.PlaceOrderRequest, context: object
    ) -> orders_pb2.PlaceOrderResponse:
        principal = caller()
        principal.require_scope(WRITE_SCOPE)  # before the request is judged, as REST does
        outcome = await self._service.place(
            principal, requested_lines(request), request.idempotency_key or None)
        return orders_pb2.PlaceOrderResponse(
            order=order_message(view_of(outcome.order)),
            consistency_token=encode_token(outcome.position))

    async def CancelOrder(
        self, request: orders_pb2.CancelOrderRequest, context: object
    ) -> orders_pb2.CancelOrderResponse:
        outcome = await self._service.cancel(caller(), request.id)
        return orders_pb2.CancelOrderResponse(
            order=order_message(view_of(outcome.order)),
            consistency_token=encode_token(outcome.position))

    async def GetOrder(
        self, request: orders_pb2.GetOrderRequest, context: object
    ) -> orders_pb2.GetOrderResponse:
        principal = caller()
        principal.require_scope(READ_SCOPE)
        fresh = True
        if request.consistency_token:
            fresh = await self._freshness.wait(decode_token(request.consistency_token))
        view = await self._queries.get_order(principal, request.id)
        return orders_pb2.GetOrderResponse(order=order_message(view), stale=not fresh)

    async def ListOrders(
        self, request: orders_pb2.ListOrdersRequest, context: object
    ) -> orders_pb2.ListOrdersResponse:
        principal = caller()
        principal.require_scope(READ_SCOPE)
        page = page_request(request.page_size, request.page_token, cursor_arity=1)
        result = await self._queries.list_orders(principal, page)
        return orders_pb2.ListOrdersResponse(
            orders=[order_message(view) for view in result.items],
            next_page_token=next_page_token(result))

    async def WatchOrder(
        self, request: orders_pb2.WatchOrderRequest, context: object
    ) -> AsyncIterator[orders_pb2.WatchOrderResponse]:
        principal = caller()
        principal.require_scope(READ_SCOPE)
        if request.consistency_token:
            await self._freshness.wait(decode_token(request.consistency_token))
        async for view in self._queries.watch_order(principal, request.id):
            yield orders_pb2.WatchOrderResponse(order=order_message(view))


def register(
    service: OrdersService[Any], queries: OrderQueries, freshness: ReadYourWrites
) -> Registration:
    """A :data:`~archway.kernel.grpc.server.Registration` of the order service."""

    def add(server: Any) -> Served:
        orders_pb2_grpc.add_OrderServiceServicer_to_server(
            OrderServicer(service, queries, freshness), server)
        return Served(SERVICE_NAME, ROUTE_CLASSES)

    return add

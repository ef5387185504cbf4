"""gRPC over grpcio's asyncio channel; each answer in the neutral shapes.

Calls go through an :class:`Rpc` port with two implementations: the generated stubs
(``archway.proto``), and one whose message types are built at run time from the server's
reflection (:mod:`tests.contract.parity.reflection`). Requests are written as dicts and parsed
into whichever message type the port has (``json_format.ParseDict``); answers are read by field
name, so one normaliser serves both.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import grpc
from google.protobuf.json_format import ParseDict
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from archway.proto.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from archway.proto.identity.v1 import identity_pb2, identity_pb2_grpc
from archway.proto.orders.v1 import orders_pb2, orders_pb2_grpc
from tests.contract.parity.neutral import (
    LINE_KEYS,
    ORDER_KEYS,
    PRODUCT_KEYS,
    STOCK_KEYS,
    USER_KEYS,
    Json,
    NotInContract,
    Page,
    Refusal,
    Refused,
    checked,
    dotted_path,
)

CATALOG = "archway.catalog.v1.CatalogService"
USERS = "archway.identity.v1.UserService"
ORDERS = "archway.orders.v1.OrderService"
KINDS_BY_CODE = {
    grpc.StatusCode.UNAUTHENTICATED: {"unauthenticated"},
    grpc.StatusCode.PERMISSION_DENIED: {"forbidden"},
    grpc.StatusCode.NOT_FOUND: {"not_found"},
    grpc.StatusCode.INVALID_ARGUMENT: {"invalid"},
    grpc.StatusCode.ALREADY_EXISTS: {"conflict"},
    grpc.StatusCode.ABORTED: {"conflict"},
    # One code for a state that refuses the call and for a stale expected_version.
    grpc.StatusCode.FAILED_PRECONDITION: {"conflict", "precondition_failed"},
    grpc.StatusCode.RESOURCE_EXHAUSTED: {"rate_limited"},
}
TIMEOUT = 30.0


class Rpc(Protocol):
    """One way to call Archway's services: by full service name and method name."""

    async def unary(self, service: str, method: str, request: Json,
                    metadata: tuple[tuple[str, str], ...]) -> Any: ...
    def stream(self, service: str, method: str, request: Json,
               metadata: tuple[tuple[str, str], ...]) -> AsyncIterator[Any]: ...


GENERATED: dict[str, tuple[Any, Any]] = {
    CATALOG: (catalog_pb2, catalog_pb2_grpc.CatalogServiceStub),
    USERS: (identity_pb2, identity_pb2_grpc.UserServiceStub),
    ORDERS: (orders_pb2, orders_pb2_grpc.OrderServiceStub),
}
"""Each service's generated messages module and stub."""


class GeneratedRpc:
    """The generated stubs and message classes."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stubs = {name: (messages, stub(channel))
                       for name, (messages, stub) in GENERATED.items()}

    def _prepared(self, service: str, method: str, request: Json) -> tuple[Any, Message]:
        messages, stub = self._stubs[service]
        return getattr(stub, method), ParseDict(request, getattr(messages, f"{method}Request")())

    async def unary(self, service: str, method: str, request: Json,
                    metadata: tuple[tuple[str, str], ...]) -> Any:
        call, message = self._prepared(service, method, request)
        return await call(message, metadata=metadata, timeout=TIMEOUT)

    def stream(self, service: str, method: str, request: Json,
               metadata: tuple[tuple[str, str], ...]) -> AsyncIterator[Any]:
        call, message = self._prepared(service, method, request)
        return aiter(call(message, metadata=metadata, timeout=TIMEOUT))


def refusal(error: grpc.aio.AioRpcError) -> Refusal:
    assert error.code() in KINDS_BY_CODE, (error.code(), error.details())
    status = rpc_status.from_call(error)
    fields: set[tuple[str | int, ...]] = set()
    retry_after = None
    for detail in status.details if status is not None else ():
        for kind in (error_details_pb2.BadRequest, error_details_pb2.PreconditionFailure,
                     error_details_pb2.RetryInfo):
            if detail.Is(kind.DESCRIPTOR):
                unpacked = kind()
                detail.Unpack(unpacked)
                if isinstance(unpacked, error_details_pb2.BadRequest):
                    fields.update(dotted_path(v.field) for v in unpacked.field_violations)
                elif isinstance(unpacked, error_details_pb2.PreconditionFailure):
                    fields.update(dotted_path(v.subject) for v in unpacked.violations)
                else:
                    retry_after = unpacked.retry_delay.seconds
    return Refusal(frozenset(KINDS_BY_CODE[error.code()]), frozenset(fields),
                   error.details() or "", retry_after)


def moment(stamp: Any) -> datetime:
    return datetime.fromtimestamp(stamp.seconds, UTC) + timedelta(microseconds=stamp.nanos // 1000)


def money(message: Any) -> Json:
    return {"amount": message.amount, "currency": message.currency}


def product(m: Any) -> Json:
    return checked({
        "id": m.id, "sku": m.sku, "name": m.name, "description": m.description,
        "category": m.category, "price": money(m.price), "active": m.active,
        "available": m.available, "created_at": moment(m.created_at),
        "updated_at": moment(m.updated_at),
    }, PRODUCT_KEYS)


def user(m: Any) -> Json:
    return checked({"id": m.id, "email": m.email, "name": m.name, "roles": list(m.roles),
                    "created_at": moment(m.created_at), "updated_at": moment(m.updated_at)},
                   USER_KEYS)


def order(m: Any) -> Json:
    status = m.DESCRIPTOR.fields_by_name["status"].enum_type.values_by_number[m.status].name
    return checked({
        "id": m.id, "customer_id": m.customer_id,
        "status": status.removeprefix("ORDER_STATUS_").lower(),
        "lines": [checked({
            "product_id": line.product_id, "sku": line.sku, "name": line.name,
            "quantity": line.quantity, "unit_price": money(line.unit_price),
            "line_total": money(line.line_total)}, LINE_KEYS) for line in m.lines],
        "total": money(m.total),
        "rejection_reason": m.rejection_reason if m.HasField("rejection_reason") else None,
        "placed_at": moment(m.placed_at), "updated_at": moment(m.updated_at),
    }, ORDER_KEYS)


def metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token is not None else ()


class GrpcApi:
    def __init__(self, rpc: Rpc, name: str = "grpc") -> None:
        self.name = name
        self.rpc = rpc
        self._consistency: dict[str, str] = {}  # order id → its last command's token

    async def _call(self, service: str, method: str, token: str | None, **request: Any) -> Any:
        try:
            return await self.rpc.unary(service, method, request, metadata(token))
        except grpc.aio.AioRpcError as error:
            raise Refused(refusal(error)) from error

    async def get_product(self, product_id: str, token: str | None = None) -> Json:
        return product((await self._call(CATALOG, "GetProduct", token, id=product_id)).product)

    async def list_products(self, limit: int, cursor: str | None = None, *, q: str | None = None,
                            token: str | None = None) -> Page:
        answer = await self._call(CATALOG, "ListProducts", token, page_size=limit,
                                  page_token=cursor or "", q=q or "")
        return Page([product(item) for item in answer.products], answer.next_page_token or None)

    async def create_product(self, token: str | None, draft: Json) -> Json:
        return product((await self._call(CATALOG, "CreateProduct", token, **draft)).product)

    async def update_product(self, token: str | None, product_id: str, changes: Json) -> Json:
        raise NotInContract("CatalogService has no UpdateProduct")

    async def version_of(self, product_id: str, token: str | None) -> object:
        return (await self._call(CATALOG, "GetProduct", token, id=product_id)).product.version

    async def set_stock(self, token: str | None, product_id: str, on_hand: int,
                        version: object = None) -> Json:
        request = {"product_id": product_id, "on_hand": on_hand,
                   **({"expected_version": version} if version is not None else {})}
        stock = (await self._call(CATALOG, "SetStock", token, **request)).stock
        return checked({"product_id": stock.product_id, "on_hand": stock.on_hand,
                        "reserved": stock.reserved, "available": stock.available}, STOCK_KEYS)

    async def me(self, token: str | None) -> Json:
        return user((await self._call(USERS, "GetMe", token)).user)

    async def get_user(self, token: str | None, user_id: str) -> Json:
        return user((await self._call(USERS, "GetUser", token, id=user_id)).user)

    async def get_order(self, token: str | None, order_id: str) -> Json:
        answer = await self._call(ORDERS, "GetOrder", token, id=order_id,
                                  consistency_token=self._consistency.get(order_id, ""))
        assert not answer.stale
        return order(answer.order)

    async def list_orders(self, token: str | None, limit: int,
                          cursor: str | None = None) -> Page:
        answer = await self._call(ORDERS, "ListOrders", token, page_size=limit,
                                  page_token=cursor or "")
        return Page([order(item) for item in answer.orders], answer.next_page_token or None)

    async def place_order(self, token: str | None, lines: list[tuple[str, int]]) -> Json:
        answer = await self._call(ORDERS, "PlaceOrder", token, lines=[
            {"product_id": product_id, "quantity": quantity} for product_id, quantity in lines])
        self._consistency[answer.order.id] = answer.consistency_token
        return order(answer.order)

    async def cancel_order(self, token: str | None, order_id: str) -> Json:
        answer = await self._call(ORDERS, "CancelOrder", token, id=order_id)
        self._consistency[answer.order.id] = answer.consistency_token
        return order(answer.order)

    async def watch_order(self, token: str | None, order_id: str) -> AsyncGenerator[Json, None]:
        stream = self.rpc.stream(ORDERS, "WatchOrder", {
            "id": order_id, "consistency_token": self._consistency.get(order_id, "")},
            metadata(token))
        try:
            async for answer in stream:
                yield order(answer.order)
        except grpc.aio.AioRpcError as error:
            raise Refused(refusal(error)) from error

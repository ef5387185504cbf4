"""REST v2 and gRPC call the same services: the same answers and the same refusals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import httpx
from google.protobuf.json_format import MessageToDict

from archway.proto.catalog.v1 import catalog_pb2
from archway.proto.catalog.v1.catalog_pb2_grpc import CatalogServiceStub
from archway.proto.orders.v1 import orders_pb2
from archway.proto.orders.v1.orders_pb2_grpc import OrderServiceStub
from archway.topologies.monolith import Monolith
from tests.conftest import ADMIN, ALICE, BOB, AuthHeaders
from tests.grpc_api.conftest import Bearer, field_violations, refusal

MakeProduct = Callable[..., Awaitable[str]]


async def test_a_product_reads_the_same(
    catalog: CatalogServiceStub, client: httpx.AsyncClient, make_product: MakeProduct
) -> None:
    product_id = await make_product("PAR-1", price=4200, stock=3)
    rest = (await client.get(f"/api/v2/products/{product_id}")).json()
    grpc_product = MessageToDict(
        (await catalog.GetProduct(catalog_pb2.GetProductRequest(id=product_id))).product,
        preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    grpc_product["price"]["amount"] = int(grpc_product["price"]["amount"])  # int64 is a string
    grpc_product["available"] = int(grpc_product["available"])
    for name in ("id", "sku", "name", "description", "category", "price", "active", "available"):
        assert grpc_product[name] == rest[name], name
    assert grpc_product["created_at"] == rest["created_at"]


async def test_an_order_reads_the_same(
    orders: OrderServiceStub, client: httpx.AsyncClient, bearer: Bearer,
    auth_headers: AuthHeaders, make_product: MakeProduct, graph: Monolith,
) -> None:
    product_id = await make_product("PAR-2", price=300)
    placed = await orders.PlaceOrder(orders_pb2.PlaceOrderRequest(
        lines=[orders_pb2.LineRequest(product_id=product_id, quantity=3)]),
        metadata=await bearer(ALICE[0], "orders:write"))
    await graph.relays.settle()
    rest = (await client.get(f"/api/v2/orders/{placed.order.id}",
                             headers=await auth_headers(ALICE[0], "orders:read"))).json()
    order = (await orders.GetOrder(orders_pb2.GetOrderRequest(id=placed.order.id),
                                   metadata=await bearer(ALICE[0], "orders:read"))).order
    assert orders_pb2.OrderStatus.Name(order.status) == f"ORDER_STATUS_{rest['status'].upper()}"
    assert (order.total.amount, order.total.currency) == (
        rest["total"]["amount"], rest["total"]["currency"])
    assert [(line.product_id, line.quantity, line.line_total.amount) for line in order.lines] == [
        (line["product_id"], line["quantity"], line["line_total"]["amount"])
        for line in rest["lines"]]
    assert order.customer_id == rest["customer_id"]


async def test_the_same_refusals(
    catalog: CatalogServiceStub, orders: OrderServiceStub, client: httpx.AsyncClient,
    bearer: Bearer, auth_headers: AuthHeaders, make_product: MakeProduct, graph: Monolith,
) -> None:
    product_id = await make_product("PAR-3")
    # Someone else's order: 404 and NOT_FOUND.
    placed = await orders.PlaceOrder(orders_pb2.PlaceOrderRequest(
        lines=[orders_pb2.LineRequest(product_id=product_id, quantity=1)]),
        metadata=await bearer(ALICE[0], "orders:write"))
    await graph.relays.settle()
    bob_rest = await client.get(f"/api/v2/orders/{placed.order.id}",
                                headers=await auth_headers(BOB[0], "orders:read"))
    bob_grpc = await refusal(orders.GetOrder(orders_pb2.GetOrderRequest(id=placed.order.id),
                                             metadata=await bearer(BOB[0], "orders:read")))
    assert (bob_rest.status_code, bob_grpc.code()) == (404, grpc.StatusCode.NOT_FOUND)
    assert bob_rest.json()["detail"] == bob_grpc.details()
    # A customer writing the catalog: 403 and PERMISSION_DENIED.
    customer_rest = await client.put(f"/api/v2/products/{product_id}/stock", json={"on_hand": 1},
                                     headers=await auth_headers(ALICE[0], "catalog:write"))
    customer_grpc = await refusal(catalog.SetStock(
        catalog_pb2.SetStockRequest(product_id=product_id, on_hand=1),
        metadata=await bearer(ALICE[0], "catalog:write")))
    assert (customer_rest.status_code, customer_grpc.code()) == (
        403, grpc.StatusCode.PERMISSION_DENIED)
    # Stock below what orders hold: 422 on /on_hand and INVALID_ARGUMENT on on_hand.
    admin = await auth_headers(ADMIN[0], "catalog:write")
    await graph.relays.settle()  # Alice's order holds one unit
    below_rest = await client.put(
        f"/api/v2/products/{product_id}/stock", json={"on_hand": 0}, headers=admin)
    below_grpc = await refusal(catalog.SetStock(
        catalog_pb2.SetStockRequest(product_id=product_id, on_hand=0),
        metadata=await bearer(ADMIN[0], "catalog:write")))
    assert below_rest.status_code == 422
    assert below_grpc.code() is grpc.StatusCode.INVALID_ARGUMENT
    (error,) = below_rest.json()["errors"]
    assert error["pointer"] == "/on_hand"
    assert field_violations(below_grpc) == {"on_hand": error["detail"]}

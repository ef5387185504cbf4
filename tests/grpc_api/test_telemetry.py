"""What a gRPC call leaves behind: its request id echoed, its caller's trace carried into the
events its command writes, and its count and duration on /metrics by method and status code."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from archway.kernel.db import Database
from archway.kernel.events.cloudevent import from_json
from archway.orders.store import orders_outbox
from archway.proto.catalog.v1 import catalog_pb2
from archway.proto.catalog.v1.catalog_pb2_grpc import CatalogServiceStub
from archway.proto.orders.v1 import orders_pb2
from archway.proto.orders.v1.orders_pb2_grpc import OrderServiceStub
from archway.topologies.monolith import Monolith
from tests.conftest import ALICE
from tests.grpc_api.conftest import Bearer, refusal

MakeProduct = Callable[..., Awaitable[str]]
GET_PRODUCT = "/archway.catalog.v1.CatalogService/GetProduct"


def series(graph: Monolith, route: str, status: str) -> float:
    text = graph.metrics.render()[0].decode()
    pattern = re.compile(
        r'^archway_http_requests_total\{method="POST",protocol="grpc",'
        rf'route="{re.escape(route)}",status="{status}"\}} (\S+)$', re.MULTILINE)
    found = pattern.search(text)
    return float(found[1]) if found else 0.0


async def test_calls_are_counted_by_method_and_status_code(
    catalog: CatalogServiceStub, graph: Monolith, make_product: MakeProduct
) -> None:
    product = await make_product("TEL-1")
    found, missing = series(graph, GET_PRODUCT, "OK"), series(graph, GET_PRODUCT, "NOT_FOUND")
    await catalog.GetProduct(catalog_pb2.GetProductRequest(id=product))
    error = await refusal(catalog.GetProduct(catalog_pb2.GetProductRequest(
        id="00000000-0000-7000-8000-000000000000")))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    assert series(graph, GET_PRODUCT, "OK") == found + 1
    assert series(graph, GET_PRODUCT, "NOT_FOUND") == missing + 1
    text = graph.metrics.render()[0].decode()
    assert (f'archway_http_request_duration_seconds_count{{method="POST",protocol="grpc",'
            f'route="{GET_PRODUCT}"}}') in text


def values(metadata: Any) -> dict[str, str]:
    return {key: value for key, value in (metadata or ()) if isinstance(value, str)}


async def test_the_request_id_is_echoed_or_made(catalog: CatalogServiceStub) -> None:
    given = catalog.ListProducts(catalog_pb2.ListProductsRequest(),
                                 metadata=(("x-request-id", "grpc-tel-1"),))
    await given
    assert values(await given.trailing_metadata())["x-request-id"] == "grpc-tel-1"
    unsafe = catalog.ListProducts(catalog_pb2.ListProductsRequest(),
                                  metadata=(("x-request-id", "no spaces allowed"),))
    await unsafe
    made = values(await unsafe.trailing_metadata())["x-request-id"]
    assert made and made != "no spaces allowed"
    refused = catalog.GetProduct(catalog_pb2.GetProductRequest(id="0" * 36),
                                 metadata=(("x-request-id", "grpc-tel-2"),))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await refused
    assert error.value.code() is grpc.StatusCode.NOT_FOUND  # a refusal tells its id too
    assert values(error.value.trailing_metadata())["x-request-id"] == "grpc-tel-2"


async def test_a_command_joins_the_callers_trace_and_its_events_carry_it(
    orders: OrderServiceStub, bearer: Bearer, make_product: MakeProduct, graph: Monolith,
    database: Database,
) -> None:
    alice = await bearer(ALICE[0], "orders:write")
    trace = "5bf92f3577b34da6a3ce929d0e0e4737"
    product = await make_product("TEL-2")
    await orders.PlaceOrder(orders_pb2.PlaceOrderRequest(
        lines=[orders_pb2.LineRequest(product_id=product, quantity=1)]),
        metadata=(*alice, ("traceparent", f"00-{trace}-00f067aa0ba902b7-01")))
    assert await graph.relays.settle()
    rows: list[Any] = await graph.db.read(lambda conn: conn.execute(
        select(orders_outbox.c.payload).order_by(orders_outbox.c.position)).all())
    traces = [from_json(row.payload).get_extension("traceparent") for row in rows]
    assert traces and all(t.split("-")[1] == trace for t in traces), traces
    assert all(t.split("-")[2] != "00f067aa0ba902b7" for t in traces)  # the call's own span

"""A real grpc.aio server of the monolith's graph on a free port, called with the generated
stubs: the same services, database and tokens as the HTTP tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from archway.catalog.domain import ProductDraft
from archway.kernel.auth.principal import Principal
from archway.kernel.db import Database
from archway.kernel.money import Money
from archway.proto.catalog.v1 import catalog_pb2_grpc
from archway.proto.identity.v1 import identity_pb2_grpc
from archway.proto.orders.v1 import orders_pb2_grpc
from archway.topologies.monolith import Monolith, grpc_server
from tests.conftest import ADMIN

Metadata = tuple[tuple[str, str], ...]
Bearer = Callable[[str, str], Awaitable[Metadata]]


@pytest.fixture(scope="session")
async def channel(app: object, graph: Monolith) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc_server(graph, "127.0.0.1", 0)
    port = await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    await server.stop()


@pytest.fixture
def catalog(channel: grpc.aio.Channel, database: Database) -> catalog_pb2_grpc.CatalogServiceStub:
    return catalog_pb2_grpc.CatalogServiceStub(channel)


@pytest.fixture
def users(channel: grpc.aio.Channel, database: Database) -> identity_pb2_grpc.UserServiceStub:
    return identity_pb2_grpc.UserServiceStub(channel)


@pytest.fixture
def orders(channel: grpc.aio.Channel, database: Database) -> orders_pb2_grpc.OrderServiceStub:
    return orders_pb2_grpc.OrderServiceStub(channel)


@pytest.fixture
def bearer(graph: Monolith, accounts: dict[str, str]) -> Bearer:
    """``await bearer(email, "scope other:scope")`` → call metadata with its access token."""

    async def make(email: str, scopes: str) -> Metadata:
        token = await graph.identity.issue_dev_token(email, scopes.split())
        return (("authorization", f"Bearer {token}"),)

    return make


@pytest.fixture
async def make_product(
    graph: Monolith, accounts: dict[str, str]
) -> Callable[..., Awaitable[str]]:
    admin = Principal(accounts[ADMIN[0]], frozenset({"catalog:write"}), frozenset({"admin"}))

    async def make(sku: str, price: int = 1999, stock: int = 10, currency: str = "EUR") -> str:
        product = await graph.catalog.create_product(admin, ProductDraft(
            sku=sku, name=f"Product {sku}", category="games", price=Money(price, currency)))
        if stock:
            await graph.catalog.set_stock(admin, product.id, stock)
        return product.id

    return make


async def refusal(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call
    return refused.value


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """The ``google.rpc.BadRequest`` details of a refusal: field → description."""
    status = rpc_status.from_call(error)
    assert status is not None and status.code == error.code().value[0]
    violations = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.update({v.field: v.description for v in bad_request.field_violations})
    return violations

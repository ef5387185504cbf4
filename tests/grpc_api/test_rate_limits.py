"""Rate limits on gRPC: REST's limiter (the same instance and store), caller and plans; the
values as initial metadata, a refusal's as trailers with RetryInfo; reads and writes per method;
a stream counted once; health and reflection never; the forwarded client only behind a trusted
proxy. Each test serves the session graph with a limiter of its own (the session's has none)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import grpc
import pytest
from fastapi import FastAPI
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from archway.kernel.grpc.server import Authenticator, GrpcServer, Served
from archway.proto.catalog.v1 import catalog_pb2
from archway.proto.catalog.v1.catalog_pb2_grpc import CatalogServiceStub
from archway.proto.identity.v1 import identity_pb2
from archway.proto.identity.v1.identity_pb2_grpc import UserServiceStub
from archway.proto.orders.v1 import orders_pb2
from archway.proto.orders.v1.orders_pb2_grpc import OrderServiceStub
from archway.topologies.monolith import Monolith, grpc_server
from tests.conftest import ALICE, BOB
from tests.grpc_api.conftest import Bearer, refusal
from tests.rate_limiting import (
    CLOSED_PORT_REDIS,
    Limited,
    calling,
    fresh_address,
    rejections,
    remaining,
)
from tests.redis_server import require_redis

MakeProduct = Callable[..., Awaitable[str]]
Serving = Callable[..., AbstractAsyncContextManager[tuple[FastAPI, grpc.aio.Channel]]]
LIST = catalog_pb2.ListProductsRequest()


@pytest.fixture
def serving(limited: Limited, graph: Monolith) -> Serving:
    """``async with serving(rate_limit_anonymous_reads=2) as (app, channel)``: a gRPC server
    counted by ``app``'s limiter, as ``create_app(serve_grpc=True)`` wires it."""

    @asynccontextmanager
    async def serve(
        host: str = "127.0.0.1", **overrides: Any
    ) -> AsyncIterator[tuple[FastAPI, grpc.aio.Channel]]:
        app = limited(**overrides)
        server = grpc_server(graph, host, 0, limiter=app.state.rate_limiter,
                             trusted_proxies=overrides.get("trusted_proxies", ()))
        port = await server.start()
        try:
            target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            async with grpc.aio.insecure_channel(target) as channel:
                yield app, channel
        finally:
            await server.stop()
            await app.state.rate_limiter.close()

    return serve


def values(metadata: Any) -> dict[str, str]:
    return {key: value for key, value in (metadata or ()) if isinstance(value, str)}


async def test_under_the_limit_a_unary_calls_trailers_tell_the_count_and_over_it_is_exhausted(
    serving: Serving,
) -> None:
    async with serving(rate_limit_anonymous_reads=2) as (_, channel):
        catalog = CatalogServiceStub(channel)
        for left in (1, 0):
            call = catalog.ListProducts(LIST)
            await call
            told = values(await call.trailing_metadata())
            assert told["ratelimit-policy"] == '"anonymous";q=2;w=60'
            assert remaining(told["ratelimit"])[:2] == ("anonymous", left)
        error = await refusal(catalog.ListProducts(LIST))
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "anonymous quota of 2" in (error.details() or "")
        trailers = values(error.trailing_metadata())
        assert trailers["ratelimit-policy"] == '"anonymous";q=2;w=60'
        name, left, reset = remaining(trailers["ratelimit"])
        assert (name, left) == ("anonymous", 0)
        retry_after = int(trailers["retry-after"])
        assert 1 <= retry_after <= 60 and reset == retry_after
        status = rpc_status.from_call(error)
        assert status is not None
        info = error_details_pb2.RetryInfo()
        assert [d.Unpack(info) for d in status.details if d.Is(info.DESCRIPTOR)] == [True]
        assert info.retry_delay.seconds == retry_after


async def test_writes_and_reads_count_apart_per_method_and_per_token_subject(
    serving: Serving, bearer: Bearer
) -> None:
    alice = await bearer(ALICE[0], "profile orders:read orders:write")
    bob = await bearer(BOB[0], "profile")
    async with serving(rate_limit_default_reads=1, rate_limit_default_writes=1) as (_, channel):
        users, orders = UserServiceStub(channel), OrderServiceStub(channel)
        me = users.GetMe(identity_pb2.GetMeRequest(), metadata=alice)
        await me
        assert values(await me.trailing_metadata())["ratelimit-policy"] == '"default";q=1;w=60'
        assert (await refusal(users.GetMe(identity_pb2.GetMeRequest(), metadata=alice))
                ).code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        # A write has its own budget: refused for its input, but counted as a write.
        invalid = await refusal(orders.PlaceOrder(orders_pb2.PlaceOrderRequest(), metadata=alice))
        assert invalid.code() is grpc.StatusCode.INVALID_ARGUMENT
        told = values(invalid.trailing_metadata())
        assert told["ratelimit-policy"] == '"default-writes";q=1;w=60'
        again = await refusal(orders.PlaceOrder(orders_pb2.PlaceOrderRequest(), metadata=alice))
        assert again.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        # Another user has budgets of their own.
        assert (await users.GetMe(identity_pb2.GetMeRequest(), metadata=bob)).user.email == BOB[0]


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_rest_and_grpc_calls_of_one_caller_share_one_budget(
    serving: Serving, store: str
) -> None:
    redis = {"redis_url": require_redis()} if store == "redis" else {}
    address = fresh_address()  # gRPC's peer is 127.0.0.1: a trusted proxy forwards this one
    forwarded = (("x-forwarded-for", address),)
    async with serving(rate_limit_anonymous_reads=3, trusted_proxies=["127.0.0.1"],
                       **redis) as (app, channel):
        catalog = CatalogServiceStub(channel)
        async with calling(app, address) as http:
            assert remaining(await http.get("/api/v1/products"))[1] == 2
            call = catalog.ListProducts(LIST, metadata=forwarded)
            await call
            assert remaining(values(await call.trailing_metadata())["ratelimit"])[1] == 1
            assert remaining(await http.get("/api/v2/products"))[1] == 0
            error = await refusal(catalog.ListProducts(LIST, metadata=forwarded))
            assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert (await http.get("/api/v1/products")).status_code == 429


async def test_a_forged_forwarded_for_from_an_untrusted_peer_changes_nothing(
    serving: Serving,
) -> None:
    async with serving(rate_limit_anonymous_reads=1) as (_, channel):  # no trusted proxies
        catalog = CatalogServiceStub(channel)
        await catalog.ListProducts(LIST, metadata=(("x-forwarded-for", fresh_address()),))
        error = await refusal(
            catalog.ListProducts(LIST, metadata=(("x-forwarded-for", fresh_address()),)))
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED  # both were 127.0.0.1's


async def test_an_ipv6_peer_is_known_for_what_it_is(serving: Serving) -> None:
    """grpcio names an IPv6 peer as a URI (``ipv6:%5B::1%5D:port``): trusted here as ``::1``."""
    async with serving("::1", rate_limit_anonymous_reads=1,
                       trusted_proxies=["::1"]) as (_, channel):
        catalog = CatalogServiceStub(channel)
        for client in (fresh_address(), fresh_address()):  # each forwarded client its own
            await catalog.ListProducts(LIST, metadata=(("x-forwarded-for", client),))
        await catalog.ListProducts(LIST)  # and the proxy's own calls are ::1's
        assert (await refusal(catalog.ListProducts(LIST))).code() is (
            grpc.StatusCode.RESOURCE_EXHAUSTED)


async def test_a_watch_counts_once_however_many_updates_it_streams(
    serving: Serving, bearer: Bearer, graph: Monolith, make_product: MakeProduct
) -> None:
    alice = await bearer(ALICE[0], "orders:read orders:write")
    sold_out = await make_product("RL-WATCH", stock=0)  # the saga rejects the order
    async with serving(rate_limit_default_reads=2) as (_, channel):
        orders = OrderServiceStub(channel)
        placed = await orders.PlaceOrder(orders_pb2.PlaceOrderRequest(
            lines=[orders_pb2.LineRequest(product_id=sold_out, quantity=1)]), metadata=alice)
        stream = orders.WatchOrder(orders_pb2.WatchOrderRequest(
            id=placed.order.id, consistency_token=placed.consistency_token), metadata=alice,
            timeout=10)
        updates = [update async for update in stream]  # pending (maybe), then rejected
        assert updates and updates[-1].order.status == orders_pb2.ORDER_STATUS_REJECTED
        # A stream tells before its first message (initial metadata), a unary call with its
        # status (trailers).
        assert remaining(values(await stream.initial_metadata())["ratelimit"])[1] == 1
        get = orders.GetOrder(orders_pb2.GetOrderRequest(id=placed.order.id), metadata=alice)
        await get
        assert remaining(values(await get.trailing_metadata())["ratelimit"])[1] == 0
    assert await graph.relays.settle()


async def test_health_and_reflection_are_never_counted(serving: Serving) -> None:
    async with serving(rate_limit_anonymous_reads=1) as (_, channel):
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(3):
            call = health.Check(health_pb2.HealthCheckRequest())
            assert (await call).status == health_pb2.HealthCheckResponse.SERVING
            assert "ratelimit" not in values(await call.initial_metadata())
            assert "ratelimit" not in values(await call.trailing_metadata())
        await CatalogServiceStub(channel).ListProducts(LIST)  # the one read is still there


async def test_a_service_whose_table_misses_a_method_does_not_start(graph: Monolith) -> None:
    def incomplete(server: grpc.aio.Server) -> Served:
        registered = graph.modules[0].grpc_service()(server)
        return Served(registered.name, {
            name: cls for name, cls in registered.route_classes.items() if name != "SetStock"})

    server = GrpcServer("127.0.0.1", 0, Authenticator(graph.verifier, user_exists=_yes),
                        [incomplete])
    with pytest.raises(ValueError, match="SetStock"):
        await server.start()


async def _yes(_: str) -> bool:
    return True


async def test_refusals_are_counted_in_metrics_as_grpc(serving: Serving, graph: Monolith) -> None:
    def count() -> float:
        return rejections(graph.metrics.render()[0].decode(), "grpc", "reads")

    before = count()
    async with serving(rate_limit_anonymous_reads=1) as (_, channel):
        catalog = CatalogServiceStub(channel)
        await catalog.ListProducts(LIST)
        for _ in range(2):
            assert (await refusal(catalog.ListProducts(LIST))).code() is (
                grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert count() == before + 2


@pytest.mark.parametrize("fail_open", [True, False])
async def test_a_store_that_is_down_lets_calls_through_or_refuses_them_unavailable(
    serving: Serving, fail_open: bool
) -> None:
    down = {"redis_url": CLOSED_PORT_REDIS, "rate_limit_fail_open": fail_open}
    async with serving(**down) as (_, channel):
        call = CatalogServiceStub(channel).ListProducts(LIST)
        if fail_open:  # counted by nobody, so no values to tell
            await call
            assert "ratelimit" not in values(await call.trailing_metadata())
        else:
            error = await refusal(call)
            assert error.code() is grpc.StatusCode.UNAVAILABLE

"""OrderService over a real gRPC server: commands, reads, WatchOrder and deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from archway.catalog.consumers import RESERVATIONS_CONSUMER
from archway.kernel.events.cloudevent import Event
from archway.kernel.events.inbox import Consumer
from archway.orders.consistency import ReadYourWrites
from archway.proto.orders.v1 import orders_pb2 as pb
from archway.proto.orders.v1.orders_pb2_grpc import OrderServiceStub
from archway.topologies.monolith import Monolith
from tests.conftest import ADMIN, ALICE, BOB
from tests.grpc_api.conftest import Bearer, Metadata, field_violations, refusal

MakeProduct = Callable[..., Awaitable[str]]
SCOPES = "orders:read orders:write"


async def place(
    orders: OrderServiceStub, metadata: Metadata, *lines: tuple[str, int], key: str = ""
) -> pb.PlaceOrderResponse:
    request = pb.PlaceOrderRequest(
        lines=[pb.LineRequest(product_id=product_id, quantity=quantity)
               for product_id, quantity in lines], idempotency_key=key)
    answer: pb.PlaceOrderResponse = await orders.PlaceOrder(request, metadata=metadata)
    return answer


async def statuses_until_the_stream_ends(
    stream: grpc.aio.UnaryStreamCall, seen: list[int]
) -> None:
    async for update in stream:
        seen.append(update.order.status)


async def test_place_answers_a_pending_order_priced_now_and_get_reads_it_with_its_token(
    orders: OrderServiceStub, bearer: Bearer, make_product: MakeProduct, accounts: dict[str, str]
) -> None:
    product_id = await make_product("ORD-1", price=1250)
    alice = await bearer(ALICE[0], SCOPES)
    placed = await place(orders, alice, (product_id, 2))
    order = placed.order
    assert order.status == pb.ORDER_STATUS_PENDING and order.customer_id == accounts[ALICE[0]]
    assert (order.total.amount, order.total.currency) == (2500, "EUR")
    line = order.lines[0]
    assert (line.product_id, line.quantity, line.unit_price.amount, line.line_total.amount) == (
        product_id, 2, 1250, 2500)
    assert not order.HasField("rejection_reason")
    read = await orders.GetOrder(
        pb.GetOrderRequest(id=order.id, consistency_token=placed.consistency_token),
        metadata=alice)
    assert read.order.id == order.id and not read.stale
    listed = await orders.ListOrders(pb.ListOrdersRequest(page_size=10), metadata=alice)
    assert [o.id for o in listed.orders] == [order.id] and listed.next_page_token == ""


async def test_another_customers_order_is_not_found_and_an_admin_sees_it(
    orders: OrderServiceStub, bearer: Bearer, make_product: MakeProduct, graph: Monolith
) -> None:
    placed = await place(orders, await bearer(ALICE[0], SCOPES), (await make_product("O-2"), 1))
    await graph.relays.settle()
    for call in (orders.GetOrder(pb.GetOrderRequest(id=placed.order.id),
                                 metadata=await bearer(BOB[0], SCOPES)),
                 orders.CancelOrder(pb.CancelOrderRequest(id=placed.order.id),
                                    metadata=await bearer(BOB[0], SCOPES))):
        assert (await refusal(call)).code() is grpc.StatusCode.NOT_FOUND
    admin = await orders.GetOrder(
        pb.GetOrderRequest(id=placed.order.id), metadata=await bearer(ADMIN[0], "orders:read"))
    assert admin.order.id == placed.order.id


async def test_invalid_lines_are_field_violations_and_what_is_not_on_sale_a_precondition(
    orders: OrderServiceStub, bearer: Bearer, make_product: MakeProduct
) -> None:
    alice = await bearer(ALICE[0], SCOPES)
    product_id = await make_product("O-3")
    error = await refusal(place(orders, alice, (product_id, 0), (product_id, 1001)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert {"lines[0].quantity", "lines[1].quantity"} <= set(field_violations(error))
    error = await refusal(place(orders, alice))
    assert list(field_violations(error)) == ["lines"]
    error = await refusal(place(orders, alice, (product_id, 1), key="bad key"))
    assert list(field_violations(error)) == ["idempotency_key"]
    error = await refusal(place(orders, alice, ("0190a6a0-0000-7000-8000-000000000000", 1)))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    status = rpc_status.from_call(error)
    assert status is not None
    failure = error_details_pb2.PreconditionFailure()
    assert status.details[0].Unpack(failure)
    assert [v.subject for v in failure.violations] == ["lines[0].product_id"]
    error = await refusal(place(orders, await bearer(ALICE[0], "orders:read"), (product_id, 1)))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_one_order_per_idempotency_key(
    orders: OrderServiceStub, bearer: Bearer, make_product: MakeProduct
) -> None:
    alice = await bearer(ALICE[0], SCOPES)
    product_id = await make_product("O-4")
    first = await place(orders, alice, (product_id, 1), key="grpc-retry-1")
    again = await place(orders, alice, (product_id, 1), key="grpc-retry-1")
    assert again.order.id == first.order.id


async def test_watch_streams_pending_then_confirmed_then_cancelled_and_ends(
    orders: OrderServiceStub, bearer: Bearer, make_product: MakeProduct,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The catalog reserves only once the watch has seen the order pending (its delivery is
    # set aside meanwhile, so the bus goes on delivering to the read models).
    reserve, set_aside = asyncio.Event(), []
    deliver = Consumer.__call__

    async def later(consumer: Consumer, events: Sequence[Event]) -> None:
        await reserve.wait()
        await deliver(consumer, events)

    async def held(self: Consumer, events: Sequence[Event]) -> None:
        if self.name == RESERVATIONS_CONSUMER and not reserve.is_set():
            set_aside.append(asyncio.ensure_future(later(self, events)))
            return
        await deliver(self, events)

    monkeypatch.setattr(Consumer, "__call__", held)
    alice = await bearer(ALICE[0], SCOPES)
    placed = await place(orders, alice, (await make_product("W-1", stock=5), 1))
    seen: list[int] = []
    stream = orders.WatchOrder(pb.WatchOrderRequest(
        id=placed.order.id, consistency_token=placed.consistency_token), metadata=alice)
    watching = asyncio.ensure_future(statuses_until_the_stream_ends(stream, seen))
    await until(lambda: seen == [pb.ORDER_STATUS_PENDING])
    reserve.set()
    await asyncio.gather(*set_aside)
    await until(lambda: len(seen) == 2)
    assert seen == [pb.ORDER_STATUS_PENDING, pb.ORDER_STATUS_CONFIRMED]
    assert not watching.done()  # confirmed is not final: it may still be cancelled
    cancelled = await orders.CancelOrder(pb.CancelOrderRequest(id=placed.order.id), metadata=alice)
    assert cancelled.order.status == pb.ORDER_STATUS_CANCELLED
    await asyncio.wait_for(watching, 5)
    assert seen == [pb.ORDER_STATUS_PENDING, pb.ORDER_STATUS_CONFIRMED,
                    pb.ORDER_STATUS_CANCELLED]
    assert await stream.code() is grpc.StatusCode.OK


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the time bound"
        await asyncio.sleep(0.02)


async def test_watch_ends_with_a_rejection_and_its_reason(
    orders: OrderServiceStub, bearer: Bearer, make_product: MakeProduct
) -> None:
    alice = await bearer(ALICE[0], SCOPES)
    placed = await place(orders, alice, (await make_product("W-2", stock=1), 3))
    updates = [update.order async for update in orders.WatchOrder(pb.WatchOrderRequest(
        id=placed.order.id, consistency_token=placed.consistency_token),
        metadata=alice, timeout=10)]
    # The saga may reject the order before the watch's first read: then that read is final.
    statuses = [u.status for u in updates]
    assert statuses in ([pb.ORDER_STATUS_PENDING, pb.ORDER_STATUS_REJECTED],
                        [pb.ORDER_STATUS_REJECTED]), statuses
    assert "insufficient stock" in updates[-1].rejection_reason
    assert [u.version for u in updates] == sorted({u.version for u in updates})
    error = await refusal(orders.CancelOrder(
        pb.CancelOrderRequest(id=placed.order.id), metadata=alice))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION  # a rejected order stays so


async def test_watch_of_an_order_the_caller_may_not_see_is_not_found(
    orders: OrderServiceStub, bearer: Bearer, make_product: MakeProduct, graph: Monolith
) -> None:
    placed = await place(orders, await bearer(ALICE[0], SCOPES), (await make_product("W-3"), 1))
    await graph.relays.settle()
    stream = orders.WatchOrder(
        pb.WatchOrderRequest(id=placed.order.id), metadata=await bearer(BOB[0], SCOPES))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in stream:
            pass
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND


async def test_a_call_past_its_deadline_stops_its_work(
    orders: OrderServiceStub, bearer: Bearer, make_product: MakeProduct, graph: Monolith,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alice = await bearer(ALICE[0], SCOPES)
    placed = await place(orders, alice, (await make_product("D-1"), 1))
    waiting, stopped = asyncio.Event(), asyncio.Event()

    async def slow_wait(self: ReadYourWrites, position: int) -> bool:  # a read model far behind
        waiting.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return True

    monkeypatch.setattr(ReadYourWrites, "wait", slow_wait)
    loop = asyncio.get_running_loop()
    started = loop.time()
    error = await refusal(orders.GetOrder(
        pb.GetOrderRequest(id=placed.order.id, consistency_token=placed.consistency_token),
        metadata=alice, timeout=0.5))
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert waiting.is_set()
    await asyncio.wait_for(stopped.wait(), 2)  # the server's wait was cancelled, not left running
    assert loop.time() - started < 3


async def test_a_watch_past_its_deadline_ends_and_leaves_nothing_behind(
    orders: OrderServiceStub, bearer: Bearer, make_product: MakeProduct, graph: Monolith
) -> None:
    alice = await bearer(ALICE[0], SCOPES)
    placed = await place(orders, alice, (await make_product("D-2"), 1))
    stream = orders.WatchOrder(pb.WatchOrderRequest(
        id=placed.order.id, consistency_token=placed.consistency_token), metadata=alice,
        timeout=0.5)
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        async for _ in stream:
            pass
    assert ended.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    changes = graph.order_view.changes
    for _ in range(40):  # the server's side unwinds just after the client sees the deadline
        if not changes.watched():
            break
        await asyncio.sleep(0.05)
    assert changes.watched() == frozenset()

"""Orders use cases (the write side), run on the in-memory fakes and on the real store alike.

The same tests pass on both, which keeps the fakes honest (see conftest.py).
"""

from __future__ import annotations

import pytest

from archway.catalog.domain import ProductChanges
from archway.kernel.auth.principal import Principal
from archway.kernel.errors import Conflict, Forbidden, NotFound, Unavailable
from archway.kernel.events.cloudevent import Event, make_event
from archway.kernel.money import Money
from archway.orders.domain import LineRequest, OrderStatus
from archway.orders.events import STOCK_REJECTED, STOCK_RESERVED
from tests.unit.orders.conftest import CATALOG_ADMIN, Shop

ALICE = Principal("alice", frozenset({"orders:write"}), frozenset({"customer"}))
BOB = Principal("bob", frozenset({"orders:write"}), frozenset({"customer"}))
ADMIN = Principal("admin", frozenset({"orders:write"}), frozenset({"admin"}))
READER = Principal("carol", frozenset({"orders:read"}), frozenset({"customer"}))


def answer(event_type: str, order_id: str, **data: object) -> Event:
    return make_event(event_type, "/archway/catalog", order_id, {"order_id": order_id, **data})


async def test_an_order_is_placed_pending_priced_by_the_catalog_with_its_position(
    shop: Shop,
) -> None:
    a = await shop.product("A", price=1999)
    b = await shop.product("B", price=250)
    outcome = await shop.service.place(ALICE, [LineRequest(a.id, 2), LineRequest(b.id, 3)])
    order = outcome.order
    assert (order.customer_id, order.status, order.version) == ("alice", OrderStatus.PENDING, 1)
    assert order.total == Money(2 * 1999 + 3 * 250, "EUR")
    assert outcome.position > 0 and outcome.position == await shop.position(order.id)
    stored = await shop.db.read(lambda tx: shop.orders(tx).get(order.id))
    assert stored == order


async def test_placing_needs_the_scope(shop: Shop) -> None:
    a = await shop.product("A")
    with pytest.raises(Forbidden):
        await shop.service.place(READER, [LineRequest(a.id, 1)])


async def test_lines_of_products_not_on_sale_are_refused_with_their_paths(shop: Shop) -> None:
    off_sale = await shop.product("OFF", active=False)
    on_sale = await shop.product("ON")
    with pytest.raises(Unavailable) as refused:  # the catalog's state: a 409
        await shop.service.place(ALICE, [
            LineRequest(on_sale.id, 1), LineRequest(off_sale.id, 1), LineRequest("nope", 1)])
    assert [error.path for error in refused.value.errors] == [
        ("lines", 1, "product_id"), ("lines", 2, "product_id")]


async def test_one_order_per_key_and_customer(shop: Shop) -> None:
    a = await shop.product("A")
    first = await shop.service.place(ALICE, [LineRequest(a.id, 1)], "key-1")
    again = await shop.service.place(ALICE, [LineRequest(a.id, 5)], "key-1")
    assert (again.order, again.position) == (first.order, first.position)
    bobs = await shop.service.place(BOB, [LineRequest(a.id, 1)], "key-1")
    assert bobs.order.id != first.order.id
    other_key = await shop.service.place(ALICE, [LineRequest(a.id, 1)], "key-2")
    assert other_key.order.id != first.order.id


async def test_a_retry_answers_with_its_order_even_when_the_product_went_off_sale(
    shop: Shop,
) -> None:
    a = await shop.product("A")
    first = await shop.service.place(ALICE, [LineRequest(a.id, 1)], "key-1")
    await shop.catalog.update_product(CATALOG_ADMIN, a.id, ProductChanges(active=False))
    again = await shop.service.place(ALICE, [LineRequest(a.id, 1)], "key-1")
    assert again.order.id == first.order.id
    with pytest.raises(Unavailable):  # a new key is a new order, refused
        await shop.service.place(ALICE, [LineRequest(a.id, 1)], "key-2")


async def test_the_customer_cancels_once_and_a_second_cancel_changes_nothing(shop: Shop) -> None:
    a = await shop.product("A")
    placed = await shop.service.place(ALICE, [LineRequest(a.id, 1)])
    cancelled = await shop.service.cancel(ALICE, placed.order.id)
    assert (cancelled.order.status, cancelled.order.version) == (OrderStatus.CANCELLED, 2)
    assert cancelled.position > placed.position
    again = await shop.service.cancel(ALICE, placed.order.id)
    assert (again.order.version, again.position) == (2, cancelled.position)


async def test_only_the_customer_or_an_admin_cancels(shop: Shop) -> None:
    a = await shop.product("A")
    placed = await shop.service.place(ALICE, [LineRequest(a.id, 1)])
    for order_id in (placed.order.id, "not-an-id", "0190a6e5-0000-7000-8000-000000000000"):
        with pytest.raises(NotFound):
            await shop.service.cancel(BOB, order_id)
    assert (await shop.service.cancel(ADMIN, placed.order.id)).order.status is (
        OrderStatus.CANCELLED)


async def test_the_catalogs_answers_confirm_or_reject_a_pending_order(shop: Shop) -> None:
    a = await shop.product("A")
    confirmed = await shop.service.place(ALICE, [LineRequest(a.id, 1)])
    rejected = await shop.service.place(ALICE, [LineRequest(a.id, 1)])
    await shop.answer(answer(STOCK_RESERVED, confirmed.order.id))
    await shop.answer(answer(STOCK_REJECTED, rejected.order.id, reason="insufficient stock"))
    now_confirmed = await shop.db.read(lambda tx: shop.orders(tx).get(confirmed.order.id))
    now_rejected = await shop.db.read(lambda tx: shop.orders(tx).get(rejected.order.id))
    assert now_confirmed is not None and now_rejected is not None
    assert (now_confirmed.status, now_confirmed.version) == (OrderStatus.CONFIRMED, 2)
    assert (now_rejected.status, now_rejected.rejection_reason) == (
        OrderStatus.REJECTED, "insufficient stock")
    assert await shop.position(confirmed.order.id) > confirmed.position
    with pytest.raises(Conflict):
        await shop.service.cancel(ALICE, rejected.order.id)


async def test_a_late_answer_or_one_for_an_unknown_order_changes_nothing(shop: Shop) -> None:
    a = await shop.product("A")
    placed = await shop.service.place(ALICE, [LineRequest(a.id, 1)])
    cancelled = await shop.service.cancel(ALICE, placed.order.id)
    await shop.answer(answer(STOCK_RESERVED, placed.order.id))
    await shop.answer(answer(STOCK_RESERVED, "0190a6e5-0000-7000-8000-000000000000"))
    after = await shop.db.read(lambda tx: shop.orders(tx).get(placed.order.id))
    assert after is not None and (after.status, after.version) == (OrderStatus.CANCELLED, 2)
    assert await shop.position(placed.order.id) == cancelled.position


async def test_a_batch_of_answers_changes_each_order_as_one_by_one(shop: Shop) -> None:
    """The saga's consumer applies a batch of answers together (``get_many``/``save_many``
    behind the port): a late answer and an unknown order are skipped, the others decided."""
    a = await shop.product("A")
    confirmed = await shop.service.place(ALICE, [LineRequest(a.id, 1)])
    rejected = await shop.service.place(BOB, [LineRequest(a.id, 1)])
    cancelled = await shop.service.place(ALICE, [LineRequest(a.id, 1)])
    await shop.service.cancel(ALICE, cancelled.order.id)
    batch = [answer(STOCK_RESERVED, confirmed.order.id),
             answer(STOCK_RESERVED, "0190a6e5-0000-7000-8000-000000000000"),
             answer(STOCK_RESERVED, cancelled.order.id),
             answer(STOCK_REJECTED, rejected.order.id, reason="insufficient stock")]
    await shop.db.write(lambda tx: shop.service.apply_stock_answers_within(tx, batch))
    after = await shop.db.read(lambda tx: shop.orders(tx).get_many(
        [confirmed.order.id, rejected.order.id, cancelled.order.id]))
    assert {order_id: (order.status, order.version) for order_id, order in after.items()} == {
        confirmed.order.id: (OrderStatus.CONFIRMED, 2),
        rejected.order.id: (OrderStatus.REJECTED, 2),
        cancelled.order.id: (OrderStatus.CANCELLED, 2)}
    assert await shop.position(confirmed.order.id) > confirmed.position
    assert await shop.position(rejected.order.id) > rejected.position

"""Parity, orders: an order read, a customer's list paged by cursor, placing and cancelling, and
watching an order settle (REST: polling GET, it has no push; GraphQL: the ``orderUpdated``
subscription; gRPC: the ``WatchOrder`` stream) give the same data over each protocol."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.contract.conftest import Accounts, Tokens
from tests.contract.parity import PROTOCOLS, REFLECTION, over
from tests.contract.parity.neutral import Json, ShopApi, Watch, eventually
from tests.contract.parity.shop import made_product, settled

pytestmark = pytest.mark.e2e
WATCH_SECONDS = 20


@pytest.fixture(scope="module")
async def confirmed(apis: dict[str, ShopApi], tokens: Tokens) -> Json:
    """One of Alice's orders, confirmed, as REST reads it."""
    rest = apis["rest"]
    product = await made_product(rest, tokens.admin, "ORD", stock=10, price=300)
    placed = await rest.place_order(tokens.alice, [(product["id"], 3)])
    return await settled(rest, tokens.alice, placed["id"], "confirmed")


@pytest.fixture(scope="module")
async def carols(apis: dict[str, ShopApi], tokens: Tokens) -> list[Json]:
    """Carol's only orders, settled, newest first (as lists show them)."""
    rest = apis["rest"]
    product = await made_product(rest, tokens.admin, "CAROL", stock=10, price=150)
    orders = []
    for quantity in (1, 2, 3):
        placed = await rest.place_order(tokens.carol, [(product["id"], quantity)])
        orders.append(await settled(rest, tokens.carol, placed["id"], "confirmed"))
    return orders[::-1]


@over(*PROTOCOLS, REFLECTION)
async def test_an_order_reads_the_same(api: ShopApi, tokens: Tokens, confirmed: Json) -> None:
    assert await api.get_order(tokens.alice, confirmed["id"]) == confirmed
    assert await api.get_order(tokens.admin, confirmed["id"]) == confirmed  # an admin sees all
    ((line),) = confirmed["lines"]
    assert (line["quantity"], line["line_total"], confirmed["total"]) == (
        3, {"amount": 900, "currency": "EUR"}, {"amount": 900, "currency": "EUR"})


@over(*PROTOCOLS, REFLECTION)
async def test_a_customers_orders_page_alike_newest_first(
    api: ShopApi, tokens: Tokens, carols: list[Json]
) -> None:
    first = await api.list_orders(tokens.carol, 2)
    assert first.items == carols[:2] and first.next_cursor
    second = await api.list_orders(tokens.carol, 2, first.next_cursor)
    assert second.items == carols[2:] and second.next_cursor is None


@over()
async def test_an_order_placed_then_cancelled(
    api: ShopApi, rest: ShopApi, tokens: Tokens, accounts: Accounts
) -> None:
    product = await made_product(rest, tokens.admin, "PLACE", stock=5, price=700)
    placed = await api.place_order(tokens.alice, [(product["id"], 2)])
    assert uuid.UUID(placed["id"]).version == 7
    assert placed == {
        "id": placed["id"], "customer_id": accounts.alice, "status": "pending",
        "lines": [{"product_id": product["id"], "sku": product["sku"], "name": product["name"],
                   "quantity": 2, "unit_price": {"amount": 700, "currency": "EUR"},
                   "line_total": {"amount": 1400, "currency": "EUR"}}],
        "total": {"amount": 1400, "currency": "EUR"}, "rejection_reason": None,
        "placed_at": placed["placed_at"], "updated_at": placed["placed_at"],
    }
    shown = await eventually(lambda: api.get_order(tokens.alice, placed["id"]),
                             lambda order: order["status"] == "confirmed")
    assert shown == {**placed, "status": "confirmed", "updated_at": shown["updated_at"]}
    assert (await rest.get_product(product["id"]))["available"] == 3

    cancelled = await api.cancel_order(tokens.alice, placed["id"])
    assert cancelled == {**shown, "status": "cancelled", "updated_at": cancelled["updated_at"]}
    assert await settled(rest, tokens.alice, placed["id"], "cancelled") == cancelled
    await eventually(lambda: rest.get_product(product["id"]),
                     lambda now: now["available"] == 5)  # the stock is released


async def _watched(api: ShopApi, token: str, order_id: str, *,
                   cancel_when_confirmed: bool = False) -> Watch:
    """Every state the watch reports, until its stream ends (which it must, in time)."""
    watch = Watch()
    async with asyncio.timeout(WATCH_SECONDS):
        async for state in api.watch_order(token, order_id):
            assert state["id"] == order_id
            watch.states.append(state)
            if cancel_when_confirmed and state["status"] == "confirmed":
                await api.cancel_order(token, order_id)
    return watch


@over()
async def test_a_watch_follows_an_order_until_it_is_rejected(
    api: ShopApi, rest: ShopApi, tokens: Tokens
) -> None:
    product = await made_product(rest, tokens.admin, "NOSTOCK", stock=0)
    placed = await api.place_order(tokens.alice, [(product["id"], 1)])
    watch = await _watched(api, tokens.alice, placed["id"])
    assert watch.statuses in (["pending", "rejected"], ["rejected"])
    final = watch.states[-1]
    assert final["rejection_reason"]
    assert final == await settled(rest, tokens.alice, placed["id"], "rejected")


@over()
async def test_a_watch_follows_an_order_confirmed_then_cancelled(
    api: ShopApi, rest: ShopApi, tokens: Tokens
) -> None:
    product = await made_product(rest, tokens.admin, "WATCH", stock=5)
    placed = await api.place_order(tokens.alice, [(product["id"], 1)])
    watch = await _watched(api, tokens.alice, placed["id"], cancel_when_confirmed=True)
    assert watch.statuses in (["pending", "confirmed", "cancelled"], ["confirmed", "cancelled"])
    assert watch.states[-1] == await settled(rest, tokens.alice, placed["id"], "cancelled")
    assert {state["placed_at"] for state in watch.states} == {placed["placed_at"]}

"""The orders' public port answers what REST answers, under the same ownership rule."""

from __future__ import annotations

import httpx
import pytest

from archway.kernel.auth.principal import Principal
from archway.kernel.errors import NotFound
from archway.kernel.money import Money
from archway.kernel.pagination import PageRequest
from archway.orders.client import InProcessOrdersClient, OrderSummary
from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.http.test_orders_api import ALICE, BOB, place, settled
from tests.ordering import stocked_product

READER = frozenset({"orders:read"})


def customer(user_id: str) -> Principal:
    return Principal(user_id, READER, frozenset({"customer"}))


async def test_the_port_answers_as_rest_does_and_hides_other_customers_orders(
    graph: Monolith, client: httpx.AsyncClient, auth_headers: AuthHeaders,
    accounts: dict[str, str],
) -> None:
    alice = await auth_headers(ALICE, "orders:read orders:write")
    bob = await auth_headers(BOB, "orders:read orders:write")
    product = await stocked_product(graph, "PORT-1", on_hand=10, price=250)
    mine = [await place(client, alice, product, quantity) for quantity in (1, 2)]
    theirs = await place(client, bob, product, 3)
    shown = [await settled(client, alice, order["id"], 2) for order in mine]
    await settled(client, bob, theirs["id"], 2)
    orders = InProcessOrdersClient(graph.order_queries)
    as_alice = customer(accounts[ALICE])

    first = await orders.get_order(as_alice, mine[0]["id"])
    assert first == OrderSummary(
        shown[0]["id"], accounts[ALICE], shown[0]["status"], Money(250, "EUR"), None,
        shown[0]["placed_at"])
    with pytest.raises(NotFound):
        await orders.get_order(as_alice, theirs["id"])

    page = await orders.list_orders(as_alice, PageRequest(limit=1))
    assert [order.id for order in page.items] == [mine[1]["id"]]  # newest first
    assert page.next_after is not None
    rest = await orders.list_orders(as_alice, PageRequest(limit=10, after=page.next_after))
    assert [order.id for order in rest.items] == [mine[0]["id"]]
    assert rest.next_after is None

    admin = Principal("someone", READER, frozenset({"admin"}))
    everyone = await orders.list_orders(admin, PageRequest(limit=10, offset=0))
    assert {order.id for order in everyone.items} == {mine[0]["id"], mine[1]["id"], theirs["id"]}
    assert everyone.total == 3

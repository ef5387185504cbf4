"""Money is bounded end to end: what the stores cannot hold exactly is a 422 up front.

Every amount Archway stores (a price, a line total, an order total) is at most
:data:`~archway.kernel.money.MAX_AMOUNT` minor units; an order at exactly the bound is accepted,
projected and counted in the reports, one unit above it is refused before anything is written.
"""

from __future__ import annotations

import httpx
import pytest

from archway.kernel.money import MAX_AMOUNT
from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.http.test_orders_api import ALICE, Headers, place, pointers, settled
from tests.ordering import stocked_product


@pytest.fixture
async def alice(auth_headers: AuthHeaders) -> Headers:
    return await auth_headers(ALICE, "orders:read orders:write reports:read")


@pytest.fixture
async def admin(auth_headers: AuthHeaders) -> Headers:
    return await auth_headers("admin@archway.test", "catalog:write")


async def test_an_order_at_exactly_the_bound_is_placed_projected_and_counted(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, accounts: dict[str, str],
) -> None:
    half = await stocked_product(graph, "HALF", on_hand=2000, price=MAX_AMOUNT // 1000)
    order = await place(client, alice, half, 1000, version=2)
    assert order["total"] == {"amount": MAX_AMOUNT, "currency": "EUR"}
    shown = await settled(client, alice, order["id"], version=2)
    assert shown["status"] == "confirmed"
    assert shown["total"]["amount"] == MAX_AMOUNT
    await graph.relays.settle()
    summary = await client.get(f"/api/v2/reports/customers/{accounts[ALICE]}", headers=alice)
    assert summary.status_code == 200, summary.text
    assert summary.json()["total_spent"]["amount"] == MAX_AMOUNT


async def test_a_line_total_above_the_bound_is_refused_on_its_quantity(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, accounts: dict[str, str],
) -> None:
    dear = await stocked_product(graph, "DEAR", on_hand=2000, price=MAX_AMOUNT)
    response = await client.post("/api/v2/orders", headers=alice, json={
        "lines": [{"product_id": dear, "quantity": 2}]})
    assert pointers(response) == ["/lines/0/quantity"]
    assert str(MAX_AMOUNT) in response.json()["errors"][0]["detail"]


async def test_an_order_total_above_the_bound_is_refused_on_its_lines(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, accounts: dict[str, str],
) -> None:
    first = await stocked_product(graph, "BIG-1", on_hand=10, price=MAX_AMOUNT // 2)
    second = await stocked_product(graph, "BIG-2", on_hand=10, price=MAX_AMOUNT // 2 + 1)
    response = await client.post("/api/v1/orders", headers=alice, json={
        "lines": [{"product_id": first, "quantity": 1}, {"product_id": second, "quantity": 1}]})
    assert pointers(response) == ["/lines"]
    listed = await client.get("/api/v1/orders", headers=alice)
    assert listed.json()["total"] == 0


async def test_the_largest_order_the_limits_allow_is_refused_not_accepted(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, accounts: dict[str, str],
) -> None:
    """Formerly a 202 whose projection failed for ever: 50 lines × 1000 at the top price."""
    ids = [await stocked_product(graph, f"TOP-{n}", on_hand=1000, price=MAX_AMOUNT)
           for n in range(50)]
    response = await client.post("/api/v1/orders", headers=alice, json={
        "lines": [{"product_id": product_id, "quantity": 1000} for product_id in ids]})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(("version", "price", "pointer"), [
    (1, {"price": "10000000000.01", "currency": "EUR"}, "/price"),
    (1, {"price": "1000000000001", "currency": "JPY"}, "/price"),
    (2, {"price": {"amount": MAX_AMOUNT + 1, "currency": "EUR"}}, "/price/amount"),
])
async def test_a_price_above_the_bound_is_refused(
    client: httpx.AsyncClient, admin: Headers, version: int, price: dict[str, object],
    pointer: str,
) -> None:
    response = await client.post(f"/api/v{version}/products", headers=admin, json={
        "sku": "OVER", "name": "Over", "category": "coffee", **price})
    assert pointers(response) == [pointer]


@pytest.mark.parametrize(("version", "price"), [
    (1, {"price": "10000000000.00", "currency": "EUR"}),
    (2, {"price": {"amount": MAX_AMOUNT, "currency": "EUR"}}),
])
async def test_a_price_at_the_bound_is_accepted(
    client: httpx.AsyncClient, admin: Headers, version: int, price: dict[str, object],
) -> None:
    response = await client.post(f"/api/v{version}/products", headers=admin, json={
        "sku": "TOP", "name": "Top", "category": "coffee", **price})
    assert response.status_code == 201, response.text

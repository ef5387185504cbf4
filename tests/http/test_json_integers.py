"""Integers in request bodies are read as JSON Schema reads them (found by the fuzz, tests/fuzz).

The documents publish ``"type": "integer"``, which JSON Schema takes to be any number with a
zero fractional part: ``2.0`` is a valid quantity by the schema, so the server must take it as 2.
A fractional number stays refused; strings stay refused (bodies are strict).
"""

from __future__ import annotations

import httpx
import pytest

from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.ordering import stocked_product

ALICE, ADMIN = "alice@archway.test", "admin@archway.test"


@pytest.fixture
async def coffee(graph: Monolith, accounts: dict[str, str]) -> str:
    return await stocked_product(graph, "COF-INT", on_hand=10, price=1999)


@pytest.mark.parametrize("version", [1, 2])
async def test_an_integral_float_quantity_places_the_order(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, coffee: str, version: int
) -> None:
    response = await client.post(
        f"/api/v{version}/orders", headers=await auth_headers(ALICE, "orders:write"),
        json={"lines": [{"product_id": coffee, "quantity": 2.0}]})
    assert response.status_code == 202, response.text
    assert response.json()["lines"][0]["quantity"] == 2


@pytest.mark.parametrize("quantity", [2.5, "2", True])
async def test_a_fractional_or_non_number_quantity_stays_refused(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, coffee: str, quantity: object
) -> None:
    response = await client.post(
        "/api/v2/orders", headers=await auth_headers(ALICE, "orders:write"),
        json={"lines": [{"product_id": coffee, "quantity": quantity}]})
    assert response.status_code == 422, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == ["/lines/0/quantity"]


async def test_an_integral_float_stock_count_and_price_are_taken(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, coffee: str
) -> None:
    admin = await auth_headers(ADMIN, "catalog:write")
    stock = await client.put(f"/api/v2/products/{coffee}/stock", headers=admin,
                             json={"on_hand": 7.0})
    assert stock.status_code == 200, stock.text
    assert stock.json()["on_hand"] == 7
    price = await client.patch(f"/api/v2/products/{coffee}", headers=admin,
                               json={"price": {"amount": 1250.0, "currency": "EUR"}})
    assert price.status_code == 200, price.text
    assert price.json()["price"] == {"amount": 1250, "currency": "EUR"}

"""Catalog writes over REST: PATCH, DELETE and stock, with If-Match preconditions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.http.test_catalog_api import ADMIN, create, pointers


@pytest.fixture
async def admin(auth_headers: AuthHeaders) -> dict[str, str]:
    return await auth_headers(ADMIN, "catalog:write")


@pytest.fixture
async def product(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    return await create(client, admin)


def path(product: dict[str, Any], version: int = 1, tail: str = "") -> str:
    return f"/api/v{version}/products/{product['id']}{tail}"


# -- PATCH --------------------------------------------------------------------------------


async def test_patch_answers_the_updated_product_with_its_new_etag(
    client: httpx.AsyncClient, admin: dict[str, str], product: dict[str, Any]
) -> None:
    response = await client.patch(path(product), headers={**admin, "If-Match": '"1.1"'},
                                  json={"name": "Dark Blend", "price": "21.50", "currency": "EUR"})
    assert response.status_code == 200
    assert response.headers["etag"] == '"2.1"'
    assert (response.json()["name"], response.json()["price"]) == ("Dark Blend", "21.50")
    assert (await client.get(path(product))).json() == response.json()


@pytest.mark.parametrize("if_match", ['"1.2"', "*", '"7.1", "1.1"'])
async def test_if_match_compares_the_version_part_of_any_listed_tag(
    client: httpx.AsyncClient, admin: dict[str, str], product: dict[str, Any], if_match: str
) -> None:
    response = await client.patch(
        path(product), headers={**admin, "If-Match": if_match}, json={"active": False})
    assert response.status_code == 200


@pytest.mark.parametrize("if_match", ['"2.1"', 'W/"1.1"', "garbage", '""'])
async def test_a_stale_weak_or_foreign_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], product: dict[str, Any], if_match: str
) -> None:
    response = await client.patch(
        path(product), headers={**admin, "If-Match": if_match}, json={"name": "Lost"})
    assert response.status_code == 412
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(path(product))).json()["name"] == product["name"]


async def test_v2_patch_takes_a_money_object(
    client: httpx.AsyncClient, admin: dict[str, str], product: dict[str, Any]
) -> None:
    response = await client.patch(path(product, 2), headers=admin,
                                  json={"price": {"amount": 500, "currency": "USD"}})
    assert response.json()["price"] == {"amount": 500, "currency": "USD"}
    assert response.headers["etag"] == '"2.2"'


@pytest.mark.parametrize(("body", "expected"), [
    ({"price": "21.50"}, {"/currency"}), ({"currency": "USD"}, {"/price"}),
    ({"name": None}, {"/name"}), ({"id": "x"}, {"/id"}), ({"stock": 1}, {"/stock"}),
    ({"active": "yes"}, {"/active"}), ({"category": "Not A Slug"}, {"/category"}),
])
async def test_patch_refuses_bad_or_unknown_fields(
    client: httpx.AsyncClient, admin: dict[str, str], product: dict[str, Any],
    body: dict[str, Any], expected: set[str],
) -> None:
    assert pointers(await client.patch(path(product), headers=admin, json=body)) == expected


async def test_patch_of_an_unknown_product_is_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.patch(
        "/api/v1/products/nope", headers={**admin, "If-Match": '"1.1"'}, json={"name": "x"})
    assert response.status_code == 404


# -- DELETE -------------------------------------------------------------------------------


async def test_delete_is_204_and_then_404_for_everyone(
    client: httpx.AsyncClient, admin: dict[str, str], product: dict[str, Any]
) -> None:
    stale = await client.delete(path(product), headers={**admin, "If-Match": '"5.1"'})
    assert stale.status_code == 412
    response = await client.delete(path(product), headers={**admin, "If-Match": '"1.1"'})
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(path(product))).status_code == 404
    assert (await client.get(path(product, tail="/stock"), headers=admin)).status_code == 404
    assert (await client.patch(path(product), headers=admin, json={})).status_code == 404
    assert (await client.delete(path(product), headers=admin)).status_code == 404


# -- stock --------------------------------------------------------------------------------


async def test_put_stock_answers_the_count_and_the_products_new_etag(
    client: httpx.AsyncClient, admin: dict[str, str], product: dict[str, Any]
) -> None:
    etag = (await client.get(path(product))).headers["etag"]
    response = await client.put(
        path(product, tail="/stock"), headers={**admin, "If-Match": etag}, json={"on_hand": 7})
    assert response.status_code == 200
    assert response.json() == {
        "product_id": product["id"], "on_hand": 7, "reserved": 0, "available": 7}
    assert response.headers["etag"] == '"2.1"'
    reread = await client.get(path(product))
    assert reread.headers["etag"] == '"2.1"'
    assert reread.json()["available"] == 7
    again = await client.put(
        path(product, tail="/stock"), headers={**admin, "If-Match": etag}, json={"on_hand": 9})
    assert again.status_code == 412


@pytest.mark.parametrize(("body", "expected"), [
    ({"on_hand": -1}, {"/on_hand"}), ({"on_hand": "5"}, {"/on_hand"}),
    ({"on_hand": 5, "reserved": 0}, {"/reserved"}), ({}, {"/on_hand"}),
])
async def test_put_stock_refuses_bad_counts(
    client: httpx.AsyncClient, admin: dict[str, str], product: dict[str, Any],
    body: dict[str, Any], expected: set[str],
) -> None:
    response = await client.put(path(product, tail="/stock"), headers=admin, json=body)
    assert pointers(response) == expected


async def test_a_count_below_what_orders_hold_is_422_on_on_hand(
    client: httpx.AsyncClient, admin: dict[str, str], product: dict[str, Any], graph: Monolith
) -> None:
    await client.put(path(product, tail="/stock"), headers=admin, json={"on_hand": 10})
    assert (await graph.catalog.reserve("order-1", [(product["id"], 4)])).accepted
    response = await client.put(path(product, tail="/stock"), headers=admin, json={"on_hand": 3})
    assert pointers(response) == {"/on_hand"}
    stock = await client.get(path(product, tail="/stock"), headers=admin)
    assert stock.json() == {
        "product_id": product["id"], "on_hand": 10, "reserved": 4, "available": 6}
    assert stock.headers["etag"] == '"3.1"'


async def test_reading_stock_is_for_admins(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, product: dict[str, Any]
) -> None:
    customer = await auth_headers("alice@archway.test", "catalog:write")
    assert (await client.get(path(product, tail="/stock"), headers=customer)).status_code == 403

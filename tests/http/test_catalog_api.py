"""Catalog over REST: every route, both API versions, and every refusal."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import AuthHeaders

ADMIN = "admin@archway.test"
ALICE = "alice@archway.test"
NEW_V1 = {"sku": "COF-1", "name": "House Blend", "category": "coffee", "price": "19.99",
          "currency": "EUR", "description": "Chocolate & hazelnut"}
NEW_V2 = {**{k: v for k, v in NEW_V1.items() if k not in ("price", "currency")},
          "price": {"amount": 1999, "currency": "EUR"}}


@pytest.fixture
async def admin(auth_headers: AuthHeaders) -> dict[str, str]:
    return await auth_headers(ADMIN, "catalog:write")


async def create(
    client: httpx.AsyncClient, admin: dict[str, str], version: int = 1, **fields: Any
) -> dict[str, Any]:
    body = {**(NEW_V1 if version == 1 else NEW_V2), **fields}
    response = await client.post(f"/api/v{version}/products", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def pointers(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {error["pointer"] for error in response.json()["errors"]}


# -- create -------------------------------------------------------------------------------


async def test_v1_create_answers_201_with_location_etag_and_decimal_money(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post("/api/v1/products", json=NEW_V1, headers=admin)
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/api/v1/products/{body['id']}"
    assert response.headers["etag"] == '"1.1"'
    assert {k: body[k] for k in ("sku", "price", "currency", "active", "available")} == {
        "sku": "COF-1", "price": "19.99", "currency": "EUR", "active": True, "available": 0}
    assert set(body) == {"id", "sku", "name", "description", "category", "price", "currency",
                         "active", "available", "created_at", "updated_at"}
    assert body["created_at"].endswith("Z")


async def test_v2_create_takes_and_shows_minor_units(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post("/api/v2/products", json=NEW_V2, headers=admin)
    assert response.status_code == 201
    assert response.headers["etag"] == '"1.2"'
    assert response.headers["location"].startswith("/api/v2/products/")
    assert response.json()["price"] == {"amount": 1999, "currency": "EUR"}
    assert "currency" not in response.json()


async def test_writes_need_a_token_before_anything_else(client: httpx.AsyncClient) -> None:
    fake_id = "0190a6e5-0000-7000-8000-000000000000"
    for method, path in (("POST", "/products"), ("PATCH", f"/products/{fake_id}"),
                         ("DELETE", f"/products/{fake_id}"),
                         ("PUT", f"/products/{fake_id}/stock"),
                         ("GET", f"/products/{fake_id}/stock")):
        response = await client.request(
            method, f"/api/v1{path}", json={"bogus": True}, headers={"If-Match": '"9.1"'})
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_writes_are_for_admins_with_catalog_write(
    client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    for headers in (await auth_headers(ALICE, "catalog:write"),
                    await auth_headers(ADMIN, "profile")):
        response = await client.post("/api/v1/products", json=NEW_V1, headers=headers)
        assert response.status_code == 403


async def test_create_refuses_fields_clients_may_not_set(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = {**NEW_V1, "id": "x", "version": 7, "stock": 5, "available": 9}
    response = await client.post("/api/v1/products", json=body, headers=admin)
    assert pointers(response) == {"/id", "/version", "/stock", "/available"}


async def test_create_checks_every_value(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    bad = {**NEW_V1, "sku": "no spaces", "name": "", "category": "Coffee Beans"}
    response = await client.post("/api/v1/products", json=bad, headers=admin)
    assert pointers(response) == {"/sku", "/name", "/category"}


@pytest.mark.parametrize(("price", "currency", "pointer"), [
    (19.99, "EUR", "/price"), ("19.999", "EUR", "/price"), ("-1", "EUR", "/price"),
    ("1e3", "EUR", "/price"), ("19.99", "XXX", "/currency"), ("19.5", "JPY", "/price"),
])
async def test_v1_money_is_an_exact_decimal_string(
    client: httpx.AsyncClient, admin: dict[str, str], price: object, currency: str, pointer: str
) -> None:
    body = {**NEW_V1, "price": price, "currency": currency}
    response = await client.post("/api/v1/products", json=body, headers=admin)
    assert pointers(response) == {pointer}


@pytest.mark.parametrize(("price", "pointer"), [
    ({"amount": 19.99, "currency": "EUR"}, "/price/amount"),
    ({"amount": "1999", "currency": "EUR"}, "/price/amount"),
    ({"amount": -1, "currency": "EUR"}, "/price/amount"),  # the schema states minimum 0
    ({"amount": 1999, "currency": "EURO"}, "/price/currency"),
    ("19.99", "/price"),
])
async def test_v2_money_is_integer_minor_units(
    client: httpx.AsyncClient, admin: dict[str, str], price: object, pointer: str
) -> None:
    response = await client.post("/api/v2/products", json={**NEW_V2, "price": price},
                                 headers=admin)
    assert pointers(response) == {pointer}


async def test_a_duplicate_sku_is_409(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await create(client, admin)
    response = await client.post("/api/v2/products", json=NEW_V2, headers=admin)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"


# -- read one -----------------------------------------------------------------------------


async def test_get_is_cacheable_with_a_strong_etag_per_version(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await create(client, admin)
    v1 = await client.get(f"/api/v1/products/{created['id']}")
    assert v1.status_code == 200
    assert v1.json() == created
    assert v1.headers["etag"] == '"1.1"'
    assert v1.headers["cache-control"] == "public, max-age=60"
    v2 = await client.get(f"/api/v2/products/{created['id']}")
    assert v2.headers["etag"] == '"1.2"'
    assert v2.json()["price"] == {"amount": 1999, "currency": "EUR"}


@pytest.mark.parametrize("if_none_match", ['"1.1"', 'W/"1.1"', '"0.1", "1.1"', "*"])
async def test_if_none_match_answers_304_without_a_body(
    client: httpx.AsyncClient, admin: dict[str, str], if_none_match: str
) -> None:
    created = await create(client, admin)
    response = await client.get(
        f"/api/v1/products/{created['id']}", headers={"If-None-Match": if_none_match})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == '"1.1"'
    assert response.headers["cache-control"] == "public, max-age=60"


@pytest.mark.parametrize("if_none_match", ['"1.2"', '"2.1"', "garbage"])
async def test_if_none_match_with_another_tag_answers_200(
    client: httpx.AsyncClient, admin: dict[str, str], if_none_match: str
) -> None:
    created = await create(client, admin)
    response = await client.get(
        f"/api/v1/products/{created['id']}", headers={"If-None-Match": if_none_match})
    assert response.status_code == 200


@pytest.mark.parametrize("product_id", [
    "0190a6e5-0000-7000-8000-000000000000", "not-an-id", "x" * 300])
async def test_an_unknown_or_malformed_id_is_404(
    client: httpx.AsyncClient, product_id: str
) -> None:
    response = await client.get(f"/api/v1/products/{product_id}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_product_off_sale_is_404_to_the_public(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = await create(client, admin, active=False)
    assert (await client.get(f"/api/v1/products/{created['id']}")).status_code == 404
    listed = await client.get("/api/v1/products")
    assert listed.json()["items"] == []


async def test_an_admin_sees_a_product_off_sale_privately(
    client: httpx.AsyncClient, admin: dict[str, str], auth_headers: AuthHeaders
) -> None:
    created = await create(client, admin, active=False)
    url = f"/api/v1/products/{created['id']}"
    seen = await client.get(url, headers=admin)
    assert seen.status_code == 200 and seen.json()["active"] is False
    assert seen.headers["cache-control"] == "private"
    customer = await auth_headers("alice@archway.test", "catalog:write")
    assert (await client.get(url, headers=customer)).status_code == 404


async def test_a_bad_token_on_a_public_route_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v1/products/01a21025-a735-70b8-98d9-d9ef0a3fb88d",
        headers={"Authorization": "Bearer not.a.token"})
    assert response.status_code == 401


# -- list ---------------------------------------------------------------------------------


@pytest.fixture
async def shelf(client: httpx.AsyncClient, admin: dict[str, str]) -> list[dict[str, Any]]:
    """Five products: three coffees at 5.00, 10.00, 15.00 and two books at 10.00, 20.00."""
    rows = [("C1", "Arabica", "coffee", "5.00"), ("C2", "Robusta", "coffee", "10.00"),
            ("C3", "Blend", "coffee", "15.00"), ("B1", "Atlas", "books", "10.00"),
            ("B2", "Novel", "books", "20.00")]
    return [await create(client, admin, sku=sku, name=name, category=category, price=price)
            for sku, name, category, price in rows]


async def test_v1_lists_offset_pages_with_a_total(
    client: httpx.AsyncClient, shelf: list[dict[str, Any]]
) -> None:
    response = await client.get("/api/v1/products?limit=2&offset=1")
    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["limit"], body["offset"]) == (5, 2, 1)
    assert [item["sku"] for item in body["items"]] == ["C2", "C3"]
    assert body["items"][0] == shelf[1]


async def test_v1_filters_take_decimal_prices_inclusively(
    client: httpx.AsyncClient, shelf: list[dict[str, Any]]
) -> None:
    response = await client.get(
        "/api/v1/products", params={"min_price": "10", "max_price": "15.00", "sort": "-price"})
    assert [item["sku"] for item in response.json()["items"]] == ["C3", "B1", "C2"]
    books = await client.get("/api/v1/products", params={"category": "books", "q": "NOV"})
    assert [item["sku"] for item in books.json()["items"]] == ["B2"]


async def test_v2_filters_take_minor_units(
    client: httpx.AsyncClient, shelf: list[dict[str, Any]]
) -> None:
    response = await client.get("/api/v2/products", params={"max_price": 1000, "sort": "price"})
    assert [item["sku"] for item in response.json()["data"]] == ["C1", "C2", "B1"]


@pytest.mark.parametrize(("version", "query", "pointer"), [
    (1, "min_price=abc", "min_price"), (1, "max_price=19.999", "max_price"),
    (1, "min_price=-1", "min_price"), (2, "min_price=19.99", "min_price"),
    (2, "max_price=-5", "max_price"), (1, "sort=cost", "sort"), (1, "limit=0", "limit"),
    (2, "limit=101", "limit"), (2, "cursor=garbage!", "cursor"),
])
async def test_bad_list_parameters_are_422_naming_the_parameter(
    client: httpx.AsyncClient, version: int, query: str, pointer: str
) -> None:
    response = await client.get(f"/api/v{version}/products?{query}")
    assert pointers(response) == {pointer}


async def test_v2_walks_cursor_pages_with_a_next_link_keeping_filters_and_sort(
    client: httpx.AsyncClient, shelf: list[dict[str, Any]]
) -> None:
    seen: list[str] = []
    url = "/api/v2/products?limit=2&sort=-price&min_price=600"
    for _ in range(5):
        response = await client.get(url)
        body = response.json()
        assert set(body) == {"data", "next_cursor"}
        seen += [item["sku"] for item in body["data"]]
        if body["next_cursor"] is None:
            assert "link" not in response.headers
            break
        link = response.headers["link"]
        assert link.endswith('>; rel="next"') and "sort=-price" in link and "min_price=600" in link
        url = link[1:link.index(">")]
    assert seen == ["B2", "C3", "B1", "C2"]


async def test_the_unversioned_path_follows_the_api_version_header(
    client: httpx.AsyncClient, shelf: list[dict[str, Any]]
) -> None:
    v2 = await client.get("/api/products?limit=1", headers={"API-Version": "2"})
    assert v2.headers["api-version"] == "2"
    assert "data" in v2.json()
    assert v2.headers["link"].startswith("</api/products?")
    v1 = await client.get(f"/api/products/{shelf[0]['id']}")
    assert v1.json()["price"] == "5.00"
    assert v1.headers["etag"] == '"1.1"'

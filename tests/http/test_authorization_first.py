"""Refusals for the caller come first: before body or parameter validation, before waiting for
a read model, and a token whose user was deleted cannot act any more."""

from __future__ import annotations

import httpx
import pytest

from archway.kernel.ttl_cache import TtlCache
from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.http.test_orders_api import ADMIN, ALICE, BOB
from tests.ordering import stocked_product

FORBIDDEN_BODIES = [
    pytest.param({"roles": ["admin"]}, id="a-forbidden-field"),
    pytest.param({"email": "not an email", "password": "x"}, id="invalid-values"),
    pytest.param({"name": 12}, id="a-wrong-type"),
]


@pytest.mark.parametrize("body", FORBIDDEN_BODIES)
async def test_another_users_patch_is_403_whatever_its_body(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str],
    body: dict[str, object],
) -> None:
    bob = await auth_headers(BOB, "profile")
    response = await client.patch(f"/api/v1/users/{accounts[ALICE]}", json=body, headers=bob)
    assert response.status_code == 403, response.text


async def test_another_users_patch_is_403_even_with_unreadable_json(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str],
) -> None:
    bob = await auth_headers(BOB, "profile")
    response = await client.patch(
        f"/api/v1/users/{accounts[ALICE]}", content=b"{not json",
        headers={**bob, "content-type": "application/json"})
    assert response.status_code == 403, response.text


async def test_the_user_itself_still_gets_the_validation_error(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str],
) -> None:
    alice = await auth_headers(ALICE, "profile")
    response = await client.patch(
        f"/api/v1/users/{accounts[ALICE]}", json={"roles": ["admin"]}, headers=alice)
    assert response.status_code == 422


async def test_an_admin_without_the_admin_scope_is_403_before_validation(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str],
) -> None:
    admin = await auth_headers(ADMIN, "users:read")
    for method in ("PATCH", "DELETE"):
        response = await client.request(
            method, f"/api/v1/users/{accounts[ALICE]}", json={"roles": ["admin"]},
            headers=admin)
        assert response.status_code == 403, response.text


async def test_a_customer_with_the_catalog_scope_is_403_before_validation(
    graph: Monolith, client: httpx.AsyncClient, auth_headers: AuthHeaders,
) -> None:
    alice = await auth_headers(ALICE, "catalog:write")
    product = await stocked_product(graph, "AUTH-1", on_hand=1)
    attempts = [
        ("POST", "/api/v1/products", {"sku": "!"}),
        ("PATCH", f"/api/v1/products/{product}", {"price": "x"}),
        ("PUT", f"/api/v1/products/{product}/stock", {"on_hand": -1}),
        ("DELETE", f"/api/v1/products/{product}", None),
    ]
    for method, url, body in attempts:
        response = await client.request(method, url, json=body, headers=alice)
        assert response.status_code == 403, (method, url, response.text)


async def test_another_customers_summary_is_403_before_the_token_is_read(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str],
) -> None:
    bob = await auth_headers(BOB, "orders:read")
    response = await client.get(
        f"/api/v1/reports/customers/{accounts[ALICE]}",
        headers={**bob, "Consistency-Token": "forged!"})
    assert response.status_code == 403, response.text


# -- a deleted user's token ----------------------------------------------------------------


async def test_a_deleted_users_token_cannot_place_orders(
    graph: Monolith, client: httpx.AsyncClient, auth_headers: AuthHeaders,
    accounts: dict[str, str],
) -> None:
    product = await stocked_product(graph, "DEL-1", on_hand=5)
    bob = await auth_headers(BOB, "profile orders:read orders:write")
    body = {"lines": [{"product_id": product, "quantity": 1}]}
    assert (await client.post("/api/v1/orders", json=body, headers=bob)).status_code == 202
    deleted = await client.delete(f"/api/v1/users/{accounts[BOB]}", headers=bob)
    assert deleted.status_code == 204
    for version in (1, 2):  # v2's POST /orders has a fast lane; both must refuse
        response = await client.post(f"/api/v{version}/orders", json=body, headers=bob)
        assert response.status_code == 401, response.text
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    listed = await client.get("/api/v1/orders", headers=bob)
    assert listed.status_code == 401


async def test_a_user_deleted_by_an_admin_is_refused_at_once_even_with_a_cache(
    graph: Monolith, client: httpx.AsyncClient, auth_headers: AuthHeaders,
    accounts: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deletion in this process drops the cached user: no TTL to wait out."""
    monkeypatch.setattr(graph.identity, "_cached", TtlCache(60.0))
    bob = await auth_headers(BOB, "profile orders:write")
    me = await client.get("/api/v1/users/me", headers=bob)
    assert me.status_code == 200  # Bob is now cached for a minute
    admin = await auth_headers(ADMIN, "users:write")
    assert (await client.delete(f"/api/v1/users/{accounts[BOB]}", headers=admin)).status_code == 204
    response = await client.post("/api/v1/orders", json={"lines": []}, headers=bob)
    assert response.status_code == 401, response.text

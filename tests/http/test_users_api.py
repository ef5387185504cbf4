"""Identity over REST: registration, self-service, admin access and every refusal."""

from __future__ import annotations

import httpx

from tests.conftest import AuthHeaders

ALICE = "alice@archway.test"
BOB = "bob@archway.test"
ADMIN = "admin@archway.test"


async def test_register_creates_a_customer(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/users", json={
        "email": "Carol@Example.com", "password": "long enough", "name": "Carol"})
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/api/v1/users/{body['id']}"
    assert body["email"] == "carol@example.com"
    assert body["roles"] == ["customer"]
    assert "password" not in body and "password_hash" not in body


async def test_register_answers_a_taken_email_as_a_new_one(
    client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    """No user enumeration (docs/security.md): same status, headers and body shape, and the
    account that has the email is left as it was."""
    payload = {"email": "dup@example.com", "password": "long enough", "name": "Dup"}
    first = await client.post("/api/v1/users", json=payload)
    again = await client.post("/api/v1/users", json={
        **payload, "email": "DUP@example.com", "password": "other password"})
    fresh = await client.post("/api/v1/users", json={**payload, "email": "new@example.com"})
    for answer in (again, fresh):
        assert answer.status_code == first.status_code == 201
        assert answer.headers.keys() == first.headers.keys()
        assert answer.json().keys() == first.json().keys()
        assert answer.headers["location"] == f"/api/v1/users/{answer.json()['id']}"
    assert again.json()["id"] != first.json()["id"]
    admin = await auth_headers("admin@archway.test", "users:read")
    assert (await client.get(again.headers["location"], headers=admin)).status_code == 404
    assert (await client.get(first.headers["location"], headers=admin)).json()["name"] == "Dup"


async def test_register_validates_each_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/users", json={
        "email": "not-an-email", "password": "short", "name": " "})
    assert response.status_code == 422
    pointers = {error["pointer"] for error in response.json()["errors"]}
    assert pointers == {"/email", "/password", "/name"}


async def test_register_refuses_mass_assignment(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/users", json={
        "email": "eve@example.com", "password": "long enough", "name": "Eve",
        "roles": ["admin"]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/roles"


async def test_register_refuses_missing_fields(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/users", json={"email": "x@example.com"})
    assert response.status_code == 422
    assert {e["pointer"] for e in response.json()["errors"]} == {"/password", "/name"}


async def test_me_returns_the_callers_user(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    response = await client.get("/api/v1/users/me", headers=await auth_headers(ALICE, "profile"))
    assert response.status_code == 200
    assert response.json()["id"] == accounts[ALICE]


async def test_me_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


async def test_me_needs_the_profile_scope(
    client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    reader = await auth_headers(ALICE, "orders:read")
    response = await client.get("/api/v1/users/me", headers=reader)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


async def test_a_customer_cannot_read_another_user(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    headers = await auth_headers(ALICE, "profile")
    assert (await client.get(f"/api/v1/users/{accounts[BOB]}", headers=headers)).status_code == 403
    alice_url = f"/api/v1/users/{accounts[ALICE]}"
    assert (await client.get(alice_url, headers=headers)).status_code == 200


async def test_an_admin_reads_and_lists_users(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    headers = await auth_headers(ADMIN, "users:read")
    assert (await client.get(f"/api/v1/users/{accounts[BOB]}", headers=headers)).status_code == 200
    listing = (await client.get("/api/v1/users?limit=2", headers=headers)).json()
    assert listing["total"] == 3 and listing["limit"] == 2 and len(listing["items"]) == 2


async def test_listing_users_needs_admin(
    client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    headers = await auth_headers(ALICE, "users:read profile")
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 403


async def test_v2_lists_users_by_cursor(
    client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    headers = await auth_headers(ADMIN, "users:read")
    first = await client.get("/api/v2/users?limit=2", headers=headers)
    assert first.status_code == 200
    page = first.json()
    assert len(page["data"]) == 2 and page["next_cursor"]
    assert 'rel="next"' in first.headers["link"]
    second = (await client.get(
        f"/api/v2/users?limit=2&cursor={page['next_cursor']}", headers=headers)).json()
    assert len(second["data"]) == 1 and second["next_cursor"] is None
    ids = [u["id"] for u in page["data"] + second["data"]]
    assert len(set(ids)) == 3


async def test_patch_changes_own_name_but_not_roles(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    headers = await auth_headers(ALICE, "profile")
    url = f"/api/v1/users/{accounts[ALICE]}"
    response = await client.patch(url, json={"name": "Alice B."}, headers=headers)
    assert response.status_code == 200 and response.json()["name"] == "Alice B."
    refused = await client.patch(url, json={"roles": ["admin"]}, headers=headers)
    assert refused.status_code == 422


async def test_patch_without_token_is_401_even_with_a_bad_body(
    client: httpx.AsyncClient, accounts: dict[str, str]
) -> None:
    response = await client.patch(
        f"/api/v1/users/{accounts[ALICE]}", content=b"{not json",
        headers={"content-type": "application/json"})
    assert response.status_code == 401


async def test_delete_then_404_for_everyone(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    url = f"/api/v1/users/{accounts[BOB]}"
    assert (await client.delete(url, headers=await auth_headers(BOB, "profile"))).status_code == 204
    admin = await auth_headers(ADMIN, "users:read users:write")
    assert (await client.get(url, headers=admin)).status_code == 404
    assert (await client.delete(url, headers=admin)).status_code == 404


async def test_admin_needs_users_write_to_delete_others(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    url = f"/api/v1/users/{accounts[BOB]}"
    reader = await auth_headers(ADMIN, "users:read")
    writer = await auth_headers(ADMIN, "users:write")
    assert (await client.delete(url, headers=reader)).status_code == 403
    assert (await client.delete(url, headers=writer)).status_code == 204


async def test_jwks_publishes_the_signing_key(client: httpx.AsyncClient) -> None:
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert keys and all(k["kty"] == "EC" and "d" not in k and k["alg"] == "ES256" for k in keys)

"""Admins change OAuth clients over REST: `PATCH /oauth-clients/{id}` (name, redirect URIs) and
`POST /oauth-clients/{id}/rotate-secret` (a new secret shown once, the old one refused at
once); the same in v1 and v2."""

from __future__ import annotations

import httpx
import pytest

from archway.topologies.monolith import Monolith
from tests.conftest import ADMIN, ALICE, AuthHeaders
from tests.http.test_oauth_token import assert_oauth_error, basic

MACHINE = {"client_id": "nightly-report", "name": "Nightly report",
           "grant_types": ["client_credentials"], "scopes": ["reports:read"]}
WEB = {"client_id": "web-shop", "name": "Web shop", "public": True,
       "grant_types": ["authorization_code", "refresh_token"], "scopes": ["profile"],
       "redirect_uris": ["https://shop.example/cb"]}
TOKEN = {"grant_type": "client_credentials"}


@pytest.fixture(autouse=True)
def insecure_transport_for_testserver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # see test_oauth_token.py


@pytest.fixture
async def admin(auth_headers: AuthHeaders) -> dict[str, str]:
    return await auth_headers(ADMIN[0], "users:read users:write")


async def register(client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, object]
                   ) -> dict[str, object]:
    created = await client.post("/api/v2/oauth-clients", json=body, headers=admin)
    assert created.status_code == 201, created.text
    answer: dict[str, object] = created.json()
    return answer


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_a_rotated_secret_works_and_the_old_one_is_refused_at_once(
    client: httpx.AsyncClient, admin: dict[str, str], graph: Monolith, version: str,
) -> None:
    old = str((await register(client, admin, MACHINE))["client_secret"])
    assert (await client.post("/oauth/token", data=TOKEN,
                              headers=basic("nightly-report", old))).status_code == 200
    before = await graph.identity.active_client("nightly-report")  # cached now
    assert before is not None and before.check_secret(old)
    rotated = await client.post(f"/api/{version}/oauth-clients/nightly-report/rotate-secret",
                                headers=admin)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    new = body.pop("client_secret")
    assert len(new) >= 43 and new != old
    assert body["client_id"] == "nightly-report" and body["revoked_at"] is None
    refused = await client.post("/oauth/token", data=TOKEN, headers=basic("nightly-report", old))
    assert_oauth_error(refused, 401, "invalid_client")
    fresh = await client.post("/oauth/token", data=TOKEN, headers=basic("nightly-report", new))
    assert fresh.status_code == 200, fresh.text
    read = await client.get(f"/api/{version}/oauth-clients/nightly-report", headers=admin)
    assert "client_secret" not in read.json()


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_an_admin_renames_a_client_and_replaces_its_redirect_uris(
    client: httpx.AsyncClient, admin: dict[str, str], version: str,
) -> None:
    await register(client, admin, WEB)
    path = f"/api/{version}/oauth-clients/web-shop"
    renamed = await client.patch(path, json={"name": "  The web shop "}, headers=admin)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "The web shop"
    assert renamed.json()["redirect_uris"] == ["https://shop.example/cb"]  # left as it was
    moved = await client.patch(path, json={"redirect_uris": [
        "https://shop.example/new", "http://127.0.0.1:8080/cb", "https://shop.example/new"]},
        headers=admin)
    assert moved.status_code == 200, moved.text
    assert moved.json()["redirect_uris"] == ["https://shop.example/new", "http://127.0.0.1:8080/cb"]
    assert moved.json()["name"] == "The web shop"
    read = await client.get(path, headers=admin)
    assert read.json() == moved.json()
    # The authorization endpoint takes the new URI, and no longer the old one.
    asked = {"response_type": "code", "client_id": "web-shop", "scope": "profile",
             "code_challenge": "x" * 43, "code_challenge_method": "S256"}
    new = await client.get("/oauth/authorize", params={
        **asked, "redirect_uri": "https://shop.example/new"})
    assert new.status_code == 200, new.text
    old = await client.get("/oauth/authorize", params={
        **asked, "redirect_uri": "https://shop.example/cb"})
    assert old.status_code == 400


@pytest.mark.parametrize(("body", "pointer"), [
    ({"redirect_uris": []}, "/redirect_uris"),  # the code grant needs one
    ({"redirect_uris": ["ftp://shop.example/cb"]}, "/redirect_uris"),
    ({"redirect_uris": ["https://shop.example/cb#frag"]}, "/redirect_uris"),
    ({"name": "   "}, "/name"),
    ({"client_id": "other"}, "/client_id"),
    ({"scopes": ["users:write"]}, "/scopes"),
    ({"public": False}, "/public"),
])
async def test_invalid_changes_are_422_on_the_field_and_change_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], body: dict[str, object], pointer: str,
) -> None:
    before = await register(client, admin, WEB)
    answer = await client.patch("/api/v2/oauth-clients/web-shop", json=body, headers=admin)
    assert answer.status_code == 422, answer.text
    assert [e["pointer"] for e in answer.json()["errors"]] == [pointer]
    after = (await client.get("/api/v2/oauth-clients/web-shop", headers=admin)).json()
    assert after == {k: v for k, v in before.items() if k != "client_secret"}


async def test_a_public_client_has_no_secret_to_rotate_and_a_revoked_one_cannot_change(
    client: httpx.AsyncClient, admin: dict[str, str],
) -> None:
    await register(client, admin, WEB)
    public = await client.post("/api/v2/oauth-clients/web-shop/rotate-secret", headers=admin)
    assert public.status_code == 409, public.text
    old = str((await register(client, admin, MACHINE))["client_secret"])
    await client.post("/api/v2/oauth-clients/nightly-report/revoke", headers=admin)
    for answer in (
        await client.post("/api/v2/oauth-clients/nightly-report/rotate-secret", headers=admin),
        await client.patch("/api/v2/oauth-clients/nightly-report", json={"name": "X"},
                           headers=admin),
    ):
        assert answer.status_code == 409, answer.text
    refused = await client.post("/oauth/token", data=TOKEN, headers=basic("nightly-report", old))
    assert_oauth_error(refused, 401, "invalid_client")
    for answer in (
        await client.post("/api/v2/oauth-clients/nobody-here/rotate-secret", headers=admin),
        await client.patch("/api/v2/oauth-clients/nobody-here", json={"name": "X"},
                           headers=admin),
    ):
        assert answer.status_code == 404, answer.text


async def test_only_admins_with_users_write_change_clients(
    client: httpx.AsyncClient, admin: dict[str, str], auth_headers: AuthHeaders,
) -> None:
    secret = str((await register(client, admin, MACHINE))["client_secret"])
    reader = await auth_headers(ADMIN[0], "users:read")
    customer = await auth_headers(ALICE[0], "profile users:write")
    for headers, status in (({}, 401), (reader, 403), (customer, 403)):
        rotate = await client.post("/api/v2/oauth-clients/nightly-report/rotate-secret",
                                   headers=headers)
        patch = await client.patch("/api/v2/oauth-clients/nightly-report", json={"name": "X"},
                                   headers=headers)
        assert (rotate.status_code, patch.status_code) == (status, status)
    still = await client.post("/oauth/token", data=TOKEN, headers=basic("nightly-report", secret))
    assert still.status_code == 200  # nothing was rotated

"""Admins manage OAuth clients over REST: `POST /oauth-clients` (the secret shown once),
`GET /oauth-clients/{id}`, `POST /oauth-clients/{id}/revoke`; the same in v1 and v2."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from archway.topologies.monolith import Monolith
from tests.conftest import ADMIN, ALICE, AuthHeaders
from tests.http.test_oauth_token import assert_oauth_error, basic

MACHINE = {"client_id": "nightly-report", "name": "Nightly report",
           "grant_types": ["client_credentials"], "scopes": ["reports:read"]}


@pytest.fixture(autouse=True)
def insecure_transport_for_testserver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # see test_oauth_token.py


@pytest.fixture
async def admin(auth_headers: AuthHeaders) -> dict[str, str]:
    return await auth_headers(ADMIN[0], "users:read users:write")


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_an_admin_registers_a_client_whose_secret_is_shown_once_and_works(
    client: httpx.AsyncClient, admin: dict[str, str], graph: Monolith, version: str,
) -> None:
    created = await client.post(f"/api/{version}/oauth-clients", json=MACHINE, headers=admin)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/api/{version}/oauth-clients/nightly-report"
    body = created.json()
    secret = body.pop("client_secret")
    assert len(secret) >= 43
    assert body == {
        "client_id": "nightly-report", "name": "Nightly report", "public": False,
        "grant_types": ["client_credentials"], "scopes": ["reports:read"],
        "redirect_uris": [], "created_at": body["created_at"], "revoked_at": None}
    stored = await graph.identity.active_client("nightly-report")
    assert stored is not None
    assert stored.secret_digest == hashlib.sha256(secret.encode()).hexdigest()
    read = await client.get(created.headers["location"], headers=admin)
    assert read.status_code == 200 and read.json() == body  # no secret any more
    token = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                              headers=basic("nightly-report", secret))
    assert token.status_code == 200, token.text
    revoked = await client.post(f"{created.headers['location']}/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    again = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                              headers=basic("nightly-report", secret))
    assert_oauth_error(again, 401, "invalid_client")


async def test_a_public_client_has_no_secret(
    client: httpx.AsyncClient, admin: dict[str, str],
) -> None:
    created = await client.post("/api/v2/oauth-clients", headers=admin, json={
        "client_id": "shop-web", "name": "Shop web app", "public": True,
        "grant_types": ["authorization_code", "refresh_token"], "scopes": ["profile"],
        "redirect_uris": ["https://shop.example/cb"]})
    assert created.status_code == 201, created.text
    assert created.json()["client_secret"] is None and created.json()["public"] is True


async def test_only_admins_with_the_scope(
    client: httpx.AsyncClient, auth_headers: AuthHeaders,
) -> None:
    assert (await client.post("/api/v2/oauth-clients", json=MACHINE)).status_code == 401
    alice = await auth_headers(ALICE[0], "profile users:write users:read")
    assert (await client.post("/api/v2/oauth-clients", json=MACHINE,
                              headers=alice)).status_code == 403
    reader = await auth_headers(ADMIN[0], "users:read")
    assert (await client.post("/api/v2/oauth-clients", json=MACHINE,
                              headers=reader)).status_code == 403
    assert (await client.get("/api/v2/oauth-clients/nightly-report",
                             headers=alice)).status_code == 403


@pytest.mark.parametrize(("changes", "pointer"), [
    ({"public": True}, "/grant_types"),  # no secret: no client_credentials
    ({"grant_types": ["authorization_code"]}, "/redirect_uris"),
    ({"client_id": "abcdef"}, "/client_id"),  # all hex: could be read as a UUID
    ({"redirect_uris": ["https://shop.example/cb#x"]}, "/redirect_uris"),
    ({"scopes": ["everything"]}, "/scopes"),
])
async def test_invalid_registrations_are_422_on_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], changes: dict[str, object], pointer: str,
) -> None:
    answer = await client.post("/api/v2/oauth-clients", json={**MACHINE, **changes},
                               headers=admin)
    assert answer.status_code == 422, answer.text
    assert pointer in [error["pointer"] for error in answer.json()["errors"]]


async def test_duplicates_are_409_and_unknown_clients_404(
    client: httpx.AsyncClient, admin: dict[str, str],
) -> None:
    assert (await client.post("/api/v2/oauth-clients", json=MACHINE,
                              headers=admin)).status_code == 201
    assert (await client.post("/api/v2/oauth-clients", json=MACHINE,
                              headers=admin)).status_code == 409
    assert (await client.get("/api/v2/oauth-clients/nobody", headers=admin)).status_code == 404
    assert (await client.post("/api/v2/oauth-clients/nobody/revoke",
                              headers=admin)).status_code == 404


async def test_admins_list_clients_in_pages_without_secrets(
    client: httpx.AsyncClient, admin: dict[str, str], auth_headers: AuthHeaders,
) -> None:
    secrets = []
    for client_id in ("nightly-report", "auditor", "warehouse"):
        created = await client.post("/api/v2/oauth-clients", headers=admin,
                                    json={**MACHINE, "client_id": client_id})
        secrets.append(created.json()["client_secret"])
    first = await client.get("/api/v2/oauth-clients?limit=2", headers=admin)
    assert first.status_code == 200, first.text
    assert [c["client_id"] for c in first.json()["data"]] == ["auditor", "nightly-report"]
    rest = await client.get(
        f"/api/v2/oauth-clients?limit=2&cursor={first.json()['next_cursor']}", headers=admin)
    assert [c["client_id"] for c in rest.json()["data"]] == ["warehouse"]
    assert rest.json()["next_cursor"] is None
    v1 = await client.get("/api/v1/oauth-clients?limit=1&offset=1", headers=admin)
    assert v1.json()["total"] == 3
    assert [c["client_id"] for c in v1.json()["items"]] == ["nightly-report"]
    everything = first.text + rest.text + v1.text
    assert not any(secret in everything for secret in secrets)
    users = await client.get("/api/v2/users?limit=1", headers=admin)
    forged = await client.get(  # another list's cursor (a user id) is no client's
        f"/api/v2/oauth-clients?cursor={users.json()['next_cursor']}", headers=admin)
    assert forged.status_code == 422
    assert [e["pointer"] for e in forged.json()["errors"]] == ["cursor"]
    alice = await auth_headers(ALICE[0], "users:read")
    assert (await client.get("/api/v2/oauth-clients", headers=alice)).status_code == 403

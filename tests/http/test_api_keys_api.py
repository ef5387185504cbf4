"""API keys over HTTP: admins make them (`POST /api-keys`, the key shown once), list, read and
revoke them, the same in v1 and v2; a key authenticates the routes that declare the `ApiKey`
scheme (and no other), is rate-limited by its own plan, is refused once revoked, and its last
use is written behind the request."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from archway.config import Settings
from archway.kernel.db import Database
from archway.topologies.monolith import Monolith, create_app
from tests.conftest import ADMIN, ALICE, AuthHeaders
from tests.http.test_rate_limits import calling, remaining

REPORT = "/api/v1/reports/top-products"
KEY = {"consumer": "Acme stock sync", "plan": "default", "scopes": ["reports:read"]}


@pytest.fixture
async def admin(auth_headers: AuthHeaders) -> dict[str, str]:
    return await auth_headers(ADMIN[0], "users:read users:write")


async def new_key(
    client: httpx.AsyncClient, admin: dict[str, str], **changes: object
) -> tuple[str, str]:
    created = await client.post("/api/v1/api-keys", json={**KEY, **changes}, headers=admin)
    assert created.status_code == 201, created.text
    return created.json()["id"], created.json()["key"]


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_an_admin_creates_a_key_shown_once_that_calls_a_report(
    client: httpx.AsyncClient, admin: dict[str, str], graph: Monolith, version: str,
) -> None:
    created = await client.post(f"/api/{version}/api-keys", json=KEY, headers=admin)
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    body = created.json()
    value = body.pop("key")
    assert created.headers["location"] == f"/api/{version}/api-keys/{body['id']}"
    assert body == {"id": body["id"], "consumer": "Acme stock sync", "plan": "default",
                    "scopes": ["reports:read"], "created_at": body["created_at"],
                    "revoked_at": None, "last_used_at": None}
    stored = await graph.api_keys.get(body["id"])
    assert stored.digest == hashlib.sha256(value.encode()).hexdigest()
    read = await client.get(created.headers["location"], headers=admin)
    assert read.status_code == 200 and read.json() == body  # the key is not shown again
    assert value not in read.text

    report = await client.get(f"/api/{version}/reports/top-products",
                              headers={"X-API-Key": value})
    assert report.status_code == 200, report.text
    await graph.api_keys.settle()
    used = (await client.get(created.headers["location"], headers=admin)).json()
    assert used["last_used_at"] is not None  # written behind the request

    revoked = await client.post(f"{created.headers['location']}/revoke", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = await client.get(f"/api/{version}/reports/top-products",
                               headers={"X-API-Key": value})
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["www-authenticate"].startswith('ApiKey realm="archway", '
                                                          'error="invalid_token"')
    assert refused.json()["detail"] == "The API key is unknown or revoked."


@pytest.mark.parametrize("value", [
    "ak_" + "A" * 43, "nonsense", "", ("ak_" + "é" * 43).encode("latin-1"), b"ak_\xff\x00"])
async def test_an_unknown_or_malformed_key_is_a_401_never_a_500(
    client: httpx.AsyncClient, value: str | bytes,
) -> None:
    response = await client.get(REPORT, headers={"X-API-Key": value})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('ApiKey realm="archway"')


async def test_a_key_is_refused_by_routes_that_do_not_declare_it(
    client: httpx.AsyncClient, admin: dict[str, str], accounts: dict[str, str],
) -> None:
    _, value = await new_key(client, admin)
    for method, path in [("GET", "/api/v1/users/me"), ("GET", "/api/v1/api-keys"),
                         ("POST", "/api/v2/api-keys"), ("GET", "/api/v1/orders"),
                         ("GET", f"/api/v1/reports/customers/{accounts[ALICE[0]]}")]:
        response = await client.request(method, path, headers={"X-API-Key": value}, json=KEY)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["detail"] == ("This route does not accept API keys: it needs "
                                             "an access token.")


async def test_a_bearer_token_sent_with_a_key_wins(
    client: httpx.AsyncClient, admin: dict[str, str], auth_headers: AuthHeaders,
) -> None:
    _, value = await new_key(client, admin)
    alice = await auth_headers(ALICE[0], "profile")
    both = await client.get(REPORT, headers={**alice, "X-API-Key": value})
    assert both.status_code == 403  # Alice's token, which lacks reports:read; the key unread
    assert "insufficient_scope" in both.headers["www-authenticate"]
    me = await client.get("/api/v1/users/me", headers={**alice, "X-API-Key": "ak_nonsense"})
    assert me.status_code == 200


async def test_only_admins_make_keys_and_only_with_machine_scopes(
    client: httpx.AsyncClient, admin: dict[str, str], auth_headers: AuthHeaders,
) -> None:
    alice = await auth_headers(ALICE[0], "profile users:write")
    assert (await client.post("/api/v1/api-keys", json=KEY, headers=alice)).status_code == 403
    for changes in ({"scopes": ["profile"]}, {"scopes": ["orders:write"]},
                    {"plan": "anonymous"}, {"consumer": " "}, {"id": "mine"}):
        refused = await client.post("/api/v1/api-keys", json={**KEY, **changes}, headers=admin)
        assert refused.status_code == 422, (changes, refused.text)
    missing = await client.get("/api/v1/api-keys/0190f7a2-0000-7000-8000-000000000000",
                               headers=admin)
    assert missing.status_code == 404
    assert (await client.post("/api/v1/api-keys/nope/revoke", headers=admin)).status_code == 404


async def test_keys_are_listed_in_pages_without_their_values(
    client: httpx.AsyncClient, admin: dict[str, str],
) -> None:
    made = [await new_key(client, admin, consumer=f"Consumer {n}") for n in range(3)]
    v1 = await client.get("/api/v1/api-keys?limit=2&offset=1", headers=admin)
    assert v1.status_code == 200
    assert [k["id"] for k in v1.json()["items"]] == [made[1][0], made[2][0]]
    assert v1.json()["total"] == 3
    first = await client.get("/api/v2/api-keys?limit=2", headers=admin)
    assert [k["id"] for k in first.json()["data"]] == [made[0][0], made[1][0]]
    cursor = first.json()["next_cursor"]
    rest = await client.get(f"/api/v2/api-keys?limit=2&cursor={cursor}", headers=admin)
    assert [k["id"] for k in rest.json()["data"]] == [made[2][0]]
    assert rest.json()["next_cursor"] is None
    for _, value in made:
        assert value not in v1.text + first.text + rest.text


async def test_a_key_is_rate_limited_by_its_own_plan_and_budget(
    settings: Settings, graph: Monolith, app: object, database: Database,
    client: httpx.AsyncClient, admin: dict[str, str],
) -> None:
    _, partner = await new_key(client, admin, plan="partner")
    _, other = await new_key(client, admin)
    limited = create_app(settings.model_copy(update={
        "rate_limits": True, "rate_limit_partner_reads": 2, "rate_limit_default_reads": 5}),
        graph=graph)
    async with calling(limited) as http:
        for left in (1, 0):
            ok = await http.get(REPORT, headers={"X-API-Key": partner})
            assert ok.status_code == 200
            assert ok.headers["ratelimit-policy"] == '"partner";q=2;w=60'
            assert remaining(ok)[:2] == ("partner", left)
        over = await http.get(REPORT, headers={"X-API-Key": partner})
        assert over.status_code == 429 and over.headers["content-type"] == (
            "application/problem+json")
        # Another key, from the same address, has its own budget on its own plan.
        fine = await http.get(REPORT, headers={"X-API-Key": other})
        assert fine.status_code == 200 and remaining(fine)[:2] == ("default", 4)
        # A key that does not verify is counted as its address, like a bad token.
        bad = await http.get(REPORT, headers={"X-API-Key": "ak_" + "B" * 43})
        assert bad.status_code == 401 and remaining(bad)[0] == "anonymous"
    await graph.api_keys.settle()

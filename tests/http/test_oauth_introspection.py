"""``POST /oauth/introspect`` (RFC 7662) and ``POST /oauth/revoke`` (RFC 7009), driven by
Authlib's OAuth 2.0 client, with the exact refusals checked with plain httpx."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import httpx2
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt

from archway.config import Settings
from archway.identity.service import ClientSpec
from archway.kernel.db import Database
from archway.topologies.monolith import Monolith
from tests.conftest import ALICE, AuthHeaders
from tests.http.test_oauth_token import MACHINE, TOKEN_URL, assert_oauth_error, basic

INTROSPECT_URL = "http://testserver/oauth/introspect"
REVOKE_URL = "http://testserver/oauth/revoke"


@pytest.fixture(autouse=True)
def insecure_transport_for_testserver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # see test_oauth_token.py


@pytest.fixture
async def secret(graph: Monolith, database: Database) -> str:
    _, shown = await graph.identity.register_client(MACHINE)
    assert shown is not None
    return shown


@pytest.fixture
async def reporting(app: object, secret: str) -> AsyncIterator[AsyncOAuth2Client]:
    async with AsyncOAuth2Client(
        client_id="reporting", client_secret=secret, base_url="http://testserver",
        transport=httpx2.ASGITransport(app=app),
    ) as client:
        await client.fetch_token(TOKEN_URL, grant_type="client_credentials")
        yield client


async def test_a_client_introspects_its_own_token(
    reporting: AsyncOAuth2Client, settings: Settings, graph: Monolith
) -> None:
    access_token = reporting.token["access_token"]
    answer = await reporting.introspect_token(INTROSPECT_URL, token=access_token)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    principal = await graph.verifier.verify(access_token)
    assert body == {
        "active": True, "token_type": "Bearer", "scope": "reports:read",
        "client_id": "reporting", "sub": "reporting", "iss": settings.issuer,
        "exp": principal.expires_at, "jti": principal.token_id,
    }
    hinted = await reporting.introspect_token(
        INTROSPECT_URL, token=access_token, token_type_hint="refresh_token")
    assert hinted.json()["active"] is True  # a wrong hint widens the search (RFC 7662 §2.1)


async def test_tokens_that_are_not_the_clients_or_not_valid_are_inactive(
    reporting: AsyncOAuth2Client, auth_headers: AuthHeaders, graph: Monolith
) -> None:
    users_token = (await auth_headers(ALICE[0], "profile"))["Authorization"].split()[1]
    key = await graph.keys.signing_key()
    now = int(time.time())
    expired = jwt.encode(
        {"alg": "ES256", "kid": key.kid, "typ": "at+jwt"},
        {"iss": "http://testserver", "aud": "archway", "sub": "reporting",
         "client_id": "reporting", "scope": "reports:read", "iat": now - 600,
         "exp": now - 300, "jti": "x"}, key, algorithms=["ES256"])
    for token in (users_token, expired, "not-a-token", reporting.token["access_token"][:-4]):
        answer = await reporting.introspect_token(INTROSPECT_URL, token=token)
        assert answer.status_code == 200
        assert answer.json() == {"active": False}


async def test_a_token_of_a_revoked_client_is_inactive(
    reporting: AsyncOAuth2Client, graph: Monolith, client: httpx.AsyncClient
) -> None:
    _, other_secret = await graph.identity.register_client(ClientSpec(
        "auditor", "Auditor", public=False, grant_types=frozenset({"client_credentials"}),
        scopes=frozenset({"reports:read"})))
    assert other_secret is not None
    issued = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                               headers=basic("auditor", other_secret))
    token = issued.json()["access_token"]
    own = await client.post("/oauth/introspect", data={"token": token},
                            headers=basic("auditor", other_secret))
    assert own.json()["active"] is True
    await graph.identity.revoke_client("auditor")
    by_other = await reporting.introspect_token(INTROSPECT_URL, token=token)
    assert by_other.json() == {"active": False}


async def test_introspection_refusals(client: httpx.AsyncClient, secret: str) -> None:
    assert_oauth_error(await client.post("/oauth/introspect", data={"token": "x"}),
                       401, "invalid_client")
    assert_oauth_error(await client.post(
        "/oauth/introspect", data={"token": "x"}, headers=basic("reporting", "wrong")),
        401, "invalid_client")
    assert_oauth_error(await client.post(
        "/oauth/introspect", data={}, headers=basic("reporting", secret)),
        400, "invalid_request")
    assert_oauth_error(await client.post(
        "/oauth/introspect", data={"token": "x", "token_type_hint": "id_token"},
        headers=basic("reporting", secret)), 400, "unsupported_token_type")
    assert_oauth_error(await client.post(
        "/oauth/introspect", content=b'{"token": "x"}',
        headers={**basic("reporting", secret), "content-type": "application/json"}),
        400, "invalid_request")


async def test_a_revoked_access_token_is_refused_everywhere_until_it_expires(
    reporting: AsyncOAuth2Client, client: httpx.AsyncClient, graph: Monolith
) -> None:
    access_token = reporting.token["access_token"]
    bearer = {"Authorization": f"Bearer {access_token}"}
    assert (await client.get("/api/v2/reports/top-products", headers=bearer)).status_code == 200
    answer = await reporting.revoke_token(REVOKE_URL, token=access_token)
    assert answer.status_code == 200 and answer.json() == {}
    for path in ("/api/v2/reports/top-products", "/api/v1/reports/top-products"):
        refused = await client.get(path, headers=bearer)
        assert refused.status_code == 401, refused.text
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        assert "revoked" in refused.json()["detail"]
    introspected = await reporting.introspect_token(INTROSPECT_URL, token=access_token)
    assert introspected.json() == {"active": False}
    again = await reporting.revoke_token(REVOKE_URL, token=access_token)
    assert again.status_code == 200  # already revoked: an unknown token now, changes nothing
    fresh = await reporting.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert (await client.get("/api/v2/reports/top-products", headers={
        "Authorization": f"Bearer {fresh['access_token']}"})).status_code == 200


async def test_another_clients_access_token_is_not_revoked(
    reporting: AsyncOAuth2Client, client: httpx.AsyncClient, graph: Monolith
) -> None:
    _, other_secret = await graph.identity.register_client(ClientSpec(
        "other-job", "Another job", public=False, grant_types=frozenset({"client_credentials"}),
        scopes=frozenset({"reports:read"})))
    assert other_secret is not None
    theirs = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                               headers=basic("other-job", other_secret))
    token = theirs.json()["access_token"]
    answer = await reporting.revoke_token(REVOKE_URL, token=token)
    assert_oauth_error(answer, 400, "invalid_grant")
    assert (await graph.verifier.verify(token)).subject == "other-job"  # still valid


async def test_revoking_an_unknown_token_is_a_200_that_changes_nothing(
    reporting: AsyncOAuth2Client,
) -> None:
    answer = await reporting.revoke_token(REVOKE_URL, token="not-a-token")
    assert answer.status_code == 200 and answer.json() == {}  # RFC 7009 §2.2


async def test_revocation_refusals(
    client: httpx.AsyncClient, secret: str, auth_headers: AuthHeaders
) -> None:
    users_token = (await auth_headers(ALICE[0], "profile"))["Authorization"].split()[1]
    assert_oauth_error(await client.post(
        "/oauth/revoke", data={"token": users_token}, headers=basic("reporting", secret)),
        400, "invalid_grant")  # issued to another client
    assert_oauth_error(await client.post("/oauth/revoke", data={"token": "x"}),
                       401, "invalid_client")
    assert_oauth_error(await client.post(
        "/oauth/revoke", data={}, headers=basic("reporting", secret)), 400, "invalid_request")
    assert_oauth_error(await client.post(
        "/oauth/revoke", data={"token": "x", "token_type_hint": "id_token"},
        headers=basic("reporting", secret)), 400, "unsupported_token_type")

"""``POST /oauth/token`` (client credentials) and the RFC 8414 metadata.

Each grant is driven by Authlib's own OAuth 2.0 client (``AsyncOAuth2Client``, on httpx2)
against the in-process app: a real client that nobody here wrote. The exact RFC 6749 §5.2
error shapes are checked with plain httpx.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from archway.config import Settings
from archway.identity.service import ClientSpec
from archway.kernel.auth.principal import SCOPES
from archway.kernel.db import Database
from archway.topologies.monolith import Monolith

TOKEN_URL = "http://testserver/oauth/token"
MACHINE = ClientSpec("reporting", "Reporting job", public=False,
                     grant_types=frozenset({"client_credentials"}),
                     scopes=frozenset({"reports:read"}))


@pytest.fixture(autouse=True)
def insecure_transport_for_testserver(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test app's issuer is http://testserver: plain http off loopback, which Authlib (the
    # server and the client) refuses unless told it is development.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
async def secret(graph: Monolith, database: Database) -> str:
    _, shown = await graph.identity.register_client(MACHINE)
    assert shown is not None
    return shown


@pytest.fixture
async def oauth_client(app: object, secret: str) -> AsyncIterator[Any]:
    async def make(method: str, client_secret: str = secret) -> AsyncOAuth2Client:
        client = AsyncOAuth2Client(
            client_id="reporting", client_secret=client_secret,
            token_endpoint_auth_method=method, base_url="http://testserver",
            transport=httpx2.ASGITransport(app=app))
        opened.append(client)
        return client

    opened: list[AsyncOAuth2Client] = []
    yield make
    for client in opened:
        await client.aclose()


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_authlib_client_gets_an_rfc_9068_token_and_calls_the_api_with_it(
    oauth_client: Any, method: str, graph: Monolith, settings: Settings
) -> None:
    client = await oauth_client(method)
    token = await client.fetch_token(TOKEN_URL, grant_type="client_credentials",
                                     scope="reports:read")
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == settings.access_token_ttl_seconds
    assert token["scope"] == "reports:read"
    assert "refresh_token" not in token  # RFC 6749 §4.4.3: none for client credentials
    principal = await graph.verifier.verify(token["access_token"])
    assert principal.subject == "reporting" and principal.client_id == "reporting"
    assert principal.scopes == {"reports:read"} and principal.roles == frozenset()
    report = await client.get("/api/v2/reports/top-products")  # the client attaches the token
    assert report.status_code == 200, report.text
    me = await client.get("/api/v2/users/me")  # not a user's token: no profile scope
    assert me.status_code == 403


async def test_the_token_is_signed_by_the_key_ring_like_every_access_token(
    oauth_client: Any, graph: Monolith
) -> None:
    client = await oauth_client("client_secret_basic")
    token = await client.fetch_token(TOKEN_URL, grant_type="client_credentials")
    header = base64.urlsafe_b64decode(token["access_token"].split(".")[0] + "==")
    kid = (await graph.keys.signing_key()).kid
    assert f'"kid":"{kid}"'.encode() in header.replace(b" ", b"")
    assert b'"typ":"at+jwt"' in header.replace(b" ", b"")
    assert token["scope"] == "reports:read"  # no scope asked for: all the client may have


async def test_a_scope_the_client_may_not_have_is_left_out(oauth_client: Any) -> None:
    client = await oauth_client("client_secret_post")
    token = await client.fetch_token(TOKEN_URL, grant_type="client_credentials",
                                     scope="reports:read profile")
    assert token["scope"] == "reports:read"  # RFC 6749 §3.3: the response says what it got


async def test_a_revoked_client_loses_its_tokens_and_gets_no_new_one(
    oauth_client: Any, graph: Monolith
) -> None:
    client = await oauth_client("client_secret_basic")
    await client.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert (await client.get("/api/v2/reports/top-products")).status_code == 200
    await graph.identity.revoke_client("reporting")
    refused = await client.get("/api/v2/reports/top-products")
    assert refused.status_code == 401
    with pytest.raises(OAuthError) as caught:
        await client.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert caught.value.error == "invalid_client"


async def test_authlib_client_sees_a_wrong_secret_as_invalid_client(oauth_client: Any) -> None:
    client = await oauth_client("client_secret_basic", "not-the-secret")
    with pytest.raises(OAuthError) as caught:
        await client.fetch_token(TOKEN_URL, grant_type="client_credentials")
    assert caught.value.error == "invalid_client"


# The exact RFC 6749 §5.2 shapes, with plain httpx -----------------------------------------

def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert set(body) <= {"error", "error_description", "error_uri"}
    return body


@pytest.mark.parametrize("credentials", [
    basic("reporting", "wrong"),
    basic("nobody", "wrong"),
    basic("bad\x00id", "wrong"),
    {},
])
async def test_failed_client_authentication_is_401_invalid_client_with_www_authenticate(
    client: httpx.AsyncClient, secret: str, credentials: dict[str, str]
) -> None:
    answer = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                               headers=credentials)
    assert_oauth_error(answer, 401, "invalid_client")
    assert answer.headers["www-authenticate"].startswith('Basic error="invalid_client"')


async def test_a_wrong_secret_in_the_form_is_invalid_client(
    client: httpx.AsyncClient, secret: str
) -> None:
    answer = await client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": "reporting", "client_secret": "x"})
    assert_oauth_error(answer, 401, "invalid_client")


async def test_the_success_response_is_rfc_6749_section_5_1(
    client: httpx.AsyncClient, secret: str
) -> None:
    answer = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                               headers=basic("reporting", secret))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    assert set(answer.json()) == {"access_token", "token_type", "expires_in", "scope"}


@pytest.mark.parametrize(("form", "status", "error"), [
    ({"grant_type": "password", "username": "a", "password": "b"}, 400,
     "unsupported_grant_type"),
    ({"grant_type": "client_credentials", "scope": "admin:everything"}, 400, "invalid_scope"),
    ({"grant_type": "client_credentials", "scope": "profile"}, 400, "invalid_scope"),
    ({}, 400, "invalid_request"),
])
async def test_refusals_of_the_request(
    client: httpx.AsyncClient, secret: str, form: dict[str, str], status: int, error: str
) -> None:
    answer = await client.post("/oauth/token", data=form, headers=basic("reporting", secret))
    assert_oauth_error(answer, status, error)


async def test_a_client_not_allowed_the_grant_is_unauthorized_client(
    client: httpx.AsyncClient, graph: Monolith, database: Database
) -> None:
    _, secret = await graph.identity.register_client(ClientSpec(
        "web-backend", "Web backend", public=False,
        grant_types=frozenset({"authorization_code"}), scopes=frozenset({"profile"}),
        redirect_uris=("https://web.example/cb",)))
    assert secret is not None
    answer = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                               headers=basic("web-backend", secret))
    assert_oauth_error(answer, 400, "unauthorized_client")


@pytest.mark.parametrize(("content", "content_type"), [
    (b"grant_type=client_credentials&grant_type=client_credentials",
     "application/x-www-form-urlencoded"),
    (b'{"grant_type": "client_credentials"}', "application/json"),
    (b"grant_type=client_credentials&scope=%FF", "application/x-www-form-urlencoded"),
])
async def test_a_malformed_body_is_invalid_request(
    client: httpx.AsyncClient, secret: str, content: bytes, content_type: str
) -> None:
    answer = await client.post("/oauth/token", content=content, headers={
        **basic("reporting", secret), "content-type": content_type})
    assert_oauth_error(answer, 400, "invalid_request")


async def test_the_token_endpoint_is_post_only(client: httpx.AsyncClient) -> None:
    answer = await client.get("/oauth/token")
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"


async def test_plain_http_off_loopback_is_refused_unless_told_it_is_development(
    client: httpx.AsyncClient, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTHLIB_INSECURE_TRANSPORT")
    answer = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                               headers=basic("reporting", secret))
    assert_oauth_error(answer, 400, "insecure_transport")


async def test_metadata_is_rfc_8414(client: httpx.AsyncClient, settings: Settings) -> None:
    answer = await client.get("/.well-known/oauth-authorization-server")
    assert answer.status_code == 200
    metadata = answer.json()
    assert metadata == {
        "issuer": settings.issuer,
        "authorization_endpoint": f"{settings.issuer}/oauth/authorize",
        "token_endpoint": f"{settings.issuer}/oauth/token",
        "jwks_uri": f"{settings.issuer}/.well-known/jwks.json",
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint": f"{settings.issuer}/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post"],
        "revocation_endpoint": f"{settings.issuer}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": list(SCOPES),
    }
    AuthorizationServerMetadata(metadata).validate()  # Authlib's RFC 8414 checks
    assert (await client.get(metadata["jwks_uri"].removeprefix(settings.issuer))).is_success

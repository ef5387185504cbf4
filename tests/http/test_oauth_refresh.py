"""The refresh token grant: rotated on every use, a replay revokes the whole family, stored as
digests, revoked with the user; driven by Authlib's OAuth 2.0 client, refusals with httpx.

Until the authorization code grant lands, a grant's first refresh token comes from the use case
that grant will call (``IdentityService.issue_refresh_token``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import httpx2
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from sqlalchemy import select
from sqlalchemy.engine import Connection

from archway.identity.domain import new_refresh_token
from archway.identity.service import ClientSpec
from archway.identity.store import RefreshTokenRepository, refresh_tokens
from archway.kernel.auth.principal import Principal
from archway.kernel.db import Database
from archway.topologies.monolith import Monolith
from tests.conftest import ALICE
from tests.http.test_oauth_token import TOKEN_URL, assert_oauth_error, basic

SCOPES = frozenset({"profile", "orders:read"})
BACKEND = ClientSpec("shop-backend", "Shop backend", public=False,
                     grant_types=frozenset({"authorization_code", "refresh_token"}),
                     scopes=SCOPES, redirect_uris=("https://shop.example/cb",))
BROWSER = ClientSpec("shop-web", "Shop web app", public=True,
                     grant_types=frozenset({"authorization_code", "refresh_token"}),
                     scopes=SCOPES, redirect_uris=("https://shop.example/web",))


@pytest.fixture(autouse=True)
def insecure_transport_for_testserver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # see test_oauth_token.py


@pytest.fixture
async def secret(graph: Monolith, database: Database) -> str:
    _, shown = await graph.identity.register_client(BACKEND)
    assert shown is not None
    await graph.identity.register_client(BROWSER)
    return shown


@pytest.fixture
async def alice(accounts: dict[str, str]) -> str:
    return accounts[ALICE[0]]


@pytest.fixture
async def granted(graph: Monolith, alice: str, secret: str) -> Callable[..., Awaitable[str]]:
    async def grant(client_id: str = "shop-backend") -> str:
        return await graph.identity.issue_refresh_token(alice, client_id, SCOPES)

    return grant


@pytest.fixture
async def oauth(app: object, secret: str) -> AsyncIterator[Callable[..., AsyncOAuth2Client]]:
    opened: list[AsyncOAuth2Client] = []

    def make(client_id: str = "shop-backend", method: str = "client_secret_basic",
             client_secret: str | None = secret) -> AsyncOAuth2Client:
        client = AsyncOAuth2Client(
            client_id=client_id, client_secret=client_secret,
            token_endpoint_auth_method=method, base_url="http://testserver",
            transport=httpx2.ASGITransport(app=app))
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


async def test_authlib_client_refreshes_gets_a_new_refresh_token_and_acts_as_the_user(
    oauth: Callable[..., AsyncOAuth2Client], granted: Callable[..., Awaitable[str]],
    alice: str, graph: Monolith,
) -> None:
    first = await granted()
    client = oauth()
    token = await client.refresh_token(TOKEN_URL, refresh_token=first)
    assert token["token_type"] == "Bearer" and token["scope"] == "orders:read profile"
    assert token["refresh_token"] != first  # rotated
    principal = await graph.verifier.verify(token["access_token"])
    assert principal.subject == alice and principal.client_id == "shop-backend"
    assert principal.roles == {"customer"}
    me = await client.get("/api/v2/users/me")
    assert me.status_code == 200 and me.json()["id"] == alice
    again = await client.refresh_token(TOKEN_URL, refresh_token=token["refresh_token"])
    assert again["refresh_token"] not in (first, token["refresh_token"])


async def test_a_used_refresh_token_presented_again_revokes_the_whole_family(
    oauth: Callable[..., AsyncOAuth2Client], granted: Callable[..., Awaitable[str]],
) -> None:
    first = await granted()
    client = oauth()
    second = (await client.refresh_token(TOKEN_URL, refresh_token=first))["refresh_token"]
    with pytest.raises(OAuthError) as replayed:
        await client.refresh_token(TOKEN_URL, refresh_token=first)
    assert replayed.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as newest:  # the family is gone: the thief's copy too
        await client.refresh_token(TOKEN_URL, refresh_token=second)
    assert newest.value.error == "invalid_grant"
    other = await granted()  # another grant of the same user and client is untouched
    assert (await client.refresh_token(TOKEN_URL, refresh_token=other))["refresh_token"]


async def test_two_uses_at_once_get_one_token_and_revoke_the_family(
    client: httpx.AsyncClient, granted: Callable[..., Awaitable[str]], secret: str,
) -> None:
    first = await granted()
    form = {"grant_type": "refresh_token", "refresh_token": first}
    answers = await asyncio.gather(*(
        client.post("/oauth/token", data=form, headers=basic("shop-backend", secret))
        for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 400]
    (winner,) = [a for a in answers if a.status_code == 200]
    (loser,) = [a for a in answers if a.status_code == 400]
    assert_oauth_error(loser, 400, "invalid_grant")
    reuse = await client.post("/oauth/token", headers=basic("shop-backend", secret), data={
        "grant_type": "refresh_token", "refresh_token": winner.json()["refresh_token"]})
    assert_oauth_error(reuse, 400, "invalid_grant")


async def test_a_narrower_scope_is_granted_and_the_refresh_token_keeps_the_grants_scope(
    oauth: Callable[..., AsyncOAuth2Client], granted: Callable[..., Awaitable[str]],
) -> None:
    client = oauth()
    narrow = await client.refresh_token(TOKEN_URL, refresh_token=await granted(),
                                        scope="profile")
    assert narrow["scope"] == "profile"
    other = await client.refresh_token(TOKEN_URL, refresh_token=narrow["refresh_token"],
                                       scope="orders:read")
    assert other["scope"] == "orders:read"  # RFC 6749 §6: the new refresh token's scope
    with pytest.raises(OAuthError) as wider:
        await client.refresh_token(TOKEN_URL, refresh_token=other["refresh_token"],
                                   scope="profile orders:write")
    assert wider.value.error == "invalid_scope"


async def test_a_public_client_refreshes_with_its_client_id_alone(
    oauth: Callable[..., AsyncOAuth2Client], granted: Callable[..., Awaitable[str]],
) -> None:
    client = oauth("shop-web", "none", None)
    token = await client.refresh_token(TOKEN_URL, refresh_token=await granted("shop-web"))
    assert token["refresh_token"] and token["scope"] == "orders:read profile"


async def test_another_clients_refresh_token_is_invalid_grant_and_stays_usable(
    client: httpx.AsyncClient, granted: Callable[..., Awaitable[str]], secret: str,
) -> None:
    webs = await granted("shop-web")
    answer = await client.post("/oauth/token", headers=basic("shop-backend", secret), data={
        "grant_type": "refresh_token", "refresh_token": webs})
    assert_oauth_error(answer, 400, "invalid_grant")
    own = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": webs, "client_id": "shop-web"})
    assert own.status_code == 200, own.text


async def test_deleting_the_user_revokes_their_refresh_tokens(
    client: httpx.AsyncClient, granted: Callable[..., Awaitable[str]], secret: str,
    graph: Monolith, alice: str,
) -> None:
    token = await granted()
    await graph.identity.delete_user(Principal(alice, frozenset({"profile"})), alice)
    answer = await client.post("/oauth/token", headers=basic("shop-backend", secret), data={
        "grant_type": "refresh_token", "refresh_token": token})
    assert_oauth_error(answer, 400, "invalid_grant")
    rows = await graph.db.read(lambda conn: conn.execute(select(refresh_tokens)).all())
    assert rows and all(row.revoked_at is not None for row in rows)


async def test_refusals(
    client: httpx.AsyncClient, graph: Monolith, secret: str, alice: str,
) -> None:
    expired, value = new_refresh_token("shop-backend", alice, SCOPES, -1)
    await graph.db.write(lambda conn: RefreshTokenRepository(conn).add(expired))
    for form, error in (
        ({"refresh_token": value}, "invalid_grant"),  # expired
        ({"refresh_token": "no-such-token"}, "invalid_grant"),
        ({}, "invalid_request"),  # no refresh_token
    ):
        answer = await client.post("/oauth/token", headers=basic("shop-backend", secret),
                                   data={"grant_type": "refresh_token", **form})
        assert_oauth_error(answer, 400, error)
    _, machine_secret = await graph.identity.register_client(ClientSpec(
        "machine", "Machine", public=False, grant_types=frozenset({"client_credentials"}),
        scopes=frozenset({"reports:read"})))
    assert machine_secret is not None
    not_allowed = await client.post("/oauth/token", headers=basic("machine", machine_secret),
                                    data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert_oauth_error(not_allowed, 400, "unauthorized_client")


async def test_refresh_tokens_are_stored_as_digests_only(
    oauth: Callable[..., AsyncOAuth2Client], granted: Callable[..., Awaitable[str]],
    graph: Monolith,
) -> None:
    first = await granted()
    second = (await oauth().refresh_token(TOKEN_URL, refresh_token=first))["refresh_token"]

    def everything(conn: Connection) -> list[str]:
        return [str(value) for row in conn.execute(select(refresh_tokens)) for value in row]

    stored = await graph.db.read(everything)
    for value in (first, second):
        assert hashlib.sha256(value.encode()).hexdigest() in stored
        assert not any(value in column for column in stored)


async def test_introspecting_and_revoking_a_refresh_token(
    client: httpx.AsyncClient, granted: Callable[..., Awaitable[str]], secret: str,
    alice: str,
) -> None:
    token = await granted()
    seen = await client.post("/oauth/introspect", data={"token": token},
                             headers=basic("shop-backend", secret))
    body = seen.json()
    assert body["active"] is True and body["token_type"] == "refresh_token"
    assert body["sub"] == alice and body["client_id"] == "shop-backend"
    assert body["scope"] == "orders:read profile"
    revoked = await client.post("/oauth/revoke", headers=basic("shop-backend", secret), data={
        "token": token, "token_type_hint": "refresh_token"})
    assert revoked.status_code == 200 and revoked.json() == {}
    gone = await client.post("/oauth/introspect", data={"token": token},
                             headers=basic("shop-backend", secret))
    assert gone.json() == {"active": False}
    refreshed = await client.post("/oauth/token", headers=basic("shop-backend", secret),
                                  data={"grant_type": "refresh_token", "refresh_token": token})
    assert_oauth_error(refreshed, 400, "invalid_grant")


async def test_a_public_client_revokes_its_refresh_token_by_client_id(
    client: httpx.AsyncClient, granted: Callable[..., Awaitable[str]],
) -> None:
    token = await granted("shop-web")
    revoked = await client.post("/oauth/revoke", data={"token": token, "client_id": "shop-web"})
    assert revoked.status_code == 200
    refreshed = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": token, "client_id": "shop-web"})
    assert_oauth_error(refreshed, 400, "invalid_grant")

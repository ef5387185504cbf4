"""The authorization code grant with PKCE (S256 only) and its login and consent page, driven by
Authlib's OAuth 2.0 client as a browser-side app would be (it builds the authorization URL and
the PKCE pair, then exchanges the code); the page is read and submitted as a browser would."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy import select

from archway.identity.domain import new_authorization_code
from archway.identity.service import ClientSpec
from archway.identity.store import authorization_codes
from archway.kernel.db import Database
from archway.topologies.monolith import Monolith
from tests.conftest import ALICE
from tests.http.test_oauth_token import TOKEN_URL, assert_oauth_error, basic

AUTHORIZE_URL = "http://testserver/oauth/authorize"
WEB_CALLBACK = "https://shop.example/web"
BACKEND_CALLBACK = "https://shop.example/cb"
SCOPES = frozenset({"profile", "orders:read"})
BROWSER = ClientSpec("shop-web", "Shop web app", public=True,
                     grant_types=frozenset({"authorization_code", "refresh_token"}),
                     scopes=SCOPES, redirect_uris=(WEB_CALLBACK,))
BACKEND = ClientSpec("shop-backend", "Shop backend", public=False,
                     grant_types=frozenset({"authorization_code"}), scopes=SCOPES,
                     redirect_uris=(BACKEND_CALLBACK,))
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture(autouse=True)
def insecure_transport_for_testserver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # see test_oauth_token.py


@pytest.fixture
async def backend_secret(graph: Monolith, database: Database, accounts: dict[str, str]) -> str:
    await graph.identity.register_client(BROWSER)
    _, secret = await graph.identity.register_client(BACKEND)
    assert secret is not None
    return secret


@pytest.fixture
async def oauth(
    app: object, backend_secret: str
) -> AsyncIterator[Callable[..., AsyncOAuth2Client]]:
    opened: list[AsyncOAuth2Client] = []

    def make(client_id: str = "shop-web") -> AsyncOAuth2Client:
        confidential = client_id == "shop-backend"
        client = AsyncOAuth2Client(
            client_id=client_id, client_secret=backend_secret if confidential else None,
            token_endpoint_auth_method="client_secret_basic" if confidential else "none",
            redirect_uri=BACKEND_CALLBACK if confidential else WEB_CALLBACK,
            scope="profile orders:read", code_challenge_method="S256",
            base_url="http://testserver", transport=httpx2.ASGITransport(app=app))
        opened.append(client)
        return client

    yield make
    for client in opened:
        await client.aclose()


def hidden_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}


async def sign_in(
    client: AsyncOAuth2Client, url: str, *, password: str = ALICE[1], action: str = "allow",
) -> httpx2.Response:
    """What a browser does: open the authorization URL, fill in the page's form, submit it."""
    page = await client.request("GET", url, withhold_token=True)
    assert page.status_code == 200, page.text
    form = {**hidden_fields(page.text), "email": ALICE[0], "password": password,
            "action": action}
    return await client.request("POST", "/oauth/authorize", data=form, withhold_token=True)


def redirect_params(answer: httpx2.Response | httpx.Response, where: str) -> dict[str, str]:
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(where + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@pytest.mark.parametrize("client_id", ["shop-web", "shop-backend"])
async def test_authlib_client_signs_in_with_pkce_and_acts_as_the_user(
    oauth: Callable[..., AsyncOAuth2Client], client_id: str, graph: Monolith,
    accounts: dict[str, str],
) -> None:
    client = oauth(client_id)
    verifier = generate_token(48)
    url, state = client.create_authorization_url(AUTHORIZE_URL, code_verifier=verifier)
    answer = await sign_in(client, url)
    callback = BACKEND_CALLBACK if client_id == "shop-backend" else WEB_CALLBACK
    params = redirect_params(answer, callback)
    assert params["state"] == state and params["code"]  # state round-trips
    token = await client.fetch_token(
        TOKEN_URL, authorization_response=answer.headers["location"], code_verifier=verifier)
    assert token["scope"] == "orders:read profile"
    assert ("refresh_token" in token) == (client_id == "shop-web")  # its grants say so
    principal = await graph.verifier.verify(token["access_token"])
    assert principal.subject == accounts[ALICE[0]] and principal.client_id == client_id
    me = await client.get("/api/v2/users/me")
    assert me.status_code == 200 and me.json()["email"] == ALICE[0]
    if client_id == "shop-web":
        refreshed = await client.refresh_token(TOKEN_URL)
        assert refreshed["refresh_token"] != token["refresh_token"]


async def test_the_page_is_strict_and_csrf_protected(
    oauth: Callable[..., AsyncOAuth2Client], client: httpx.AsyncClient,
) -> None:
    web = oauth()
    url, _ = web.create_authorization_url(AUTHORIZE_URL, code_verifier=generate_token(48))
    page = await web.request("GET", url, withhold_token=True)
    csp = page.headers["content-security-policy"]
    assert csp.startswith("default-src 'none'; form-action 'self' https://shop.example;")
    assert "frame-ancestors 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "Shop web app" in page.text and "orders:read" in page.text
    form = {**hidden_fields(page.text), "email": ALICE[0], "password": ALICE[1],
            "action": "allow"}
    # another browser (no cookie, as a cross-site form would post) is refused
    forged = await client.post("/oauth/authorize", data=form)
    assert forged.status_code == 403 and "location" not in forged.headers
    client.cookies.set("archway_authorize_csrf", "something-else")
    mismatched = await client.post("/oauth/authorize", data=form)
    assert mismatched.status_code == 403 and "location" not in mismatched.headers


async def test_a_wrong_password_shows_the_page_again(
    oauth: Callable[..., AsyncOAuth2Client],
) -> None:
    web = oauth()
    url, _ = web.create_authorization_url(AUTHORIZE_URL, code_verifier=generate_token(48))
    answer = await sign_in(web, url, password="not her password")
    assert answer.status_code == 401 and "location" not in answer.headers
    assert "Wrong email or password." in answer.text


async def test_denying_redirects_access_denied_with_the_state(
    oauth: Callable[..., AsyncOAuth2Client],
) -> None:
    web = oauth()
    url, state = web.create_authorization_url(AUTHORIZE_URL, code_verifier=generate_token(48))
    params = redirect_params(await sign_in(web, url, action="deny"), WEB_CALLBACK)
    assert params["error"] == "access_denied" and params["state"] == state
    assert set(params) == {"error", "error_description", "state"}  # no code


def authorize_query(**changes: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code", "client_id": "shop-web", "redirect_uri": WEB_CALLBACK,
        "scope": "profile", "state": "xyz",
        "code_challenge": create_s256_code_challenge(generate_token(48)),
        "code_challenge_method": "S256", **changes}
    return {k: v for k, v in params.items() if v is not None}


@pytest.mark.parametrize("changes", [
    {"code_challenge_method": "plain"},
    {"code_challenge_method": None},  # means plain
    {"code_challenge": None, "code_challenge_method": None},  # PKCE is required
    {"scope": "admin:everything"},
    {"scope": "reports:read"},  # a scope, but not one this client may ask for
])
async def test_refusals_that_go_back_to_the_client(
    client: httpx.AsyncClient, backend_secret: str, changes: dict[str, str | None],
) -> None:
    answer = await client.get("/oauth/authorize", params=authorize_query(**changes))
    params = redirect_params(answer, WEB_CALLBACK)
    assert params["state"] == "xyz" and "code" not in params
    assert params["error"] == ("invalid_scope" if "scope" in changes else "invalid_request")


@pytest.mark.parametrize("changes", [
    {"redirect_uri": "https://shop.example/web/extra"},  # exact match only, never a prefix
    {"redirect_uri": "https://evil.example/web"},
    {"client_id": "nobody"},
    {"client_id": None},
])
async def test_refusals_that_never_redirect(
    client: httpx.AsyncClient, backend_secret: str, changes: dict[str, str | None],
) -> None:
    answer = await client.get("/oauth/authorize", params=authorize_query(**changes))
    assert answer.status_code == 400 and "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")


async def exchange(client: httpx.AsyncClient, form: dict[str, str],
                   headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post("/oauth/token", data={"grant_type": "authorization_code", **form},
                             headers=headers or {})


async def a_code(oauth: Callable[..., AsyncOAuth2Client], verifier: str) -> str:
    web = oauth()
    url, _ = web.create_authorization_url(AUTHORIZE_URL, code_verifier=verifier)
    return redirect_params(await sign_in(web, url), WEB_CALLBACK)["code"]


async def test_a_code_is_single_use_and_its_second_use_revokes_what_the_first_got(
    oauth: Callable[..., AsyncOAuth2Client], client: httpx.AsyncClient,
) -> None:
    verifier = generate_token(48)
    code = await a_code(oauth, verifier)
    form = {"code": code, "redirect_uri": WEB_CALLBACK, "client_id": "shop-web",
            "code_verifier": verifier}
    first = await exchange(client, form)
    assert first.status_code == 200, first.text
    assert_oauth_error(await exchange(client, form), 400, "invalid_grant")
    refresh = await client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": "shop-web",
        "refresh_token": first.json()["refresh_token"]})
    assert_oauth_error(refresh, 400, "invalid_grant")


@pytest.mark.parametrize("wrong", ["verifier", "redirect_uri", "client"])
async def test_a_code_is_bound_to_its_verifier_redirect_uri_and_client(
    oauth: Callable[..., AsyncOAuth2Client], client: httpx.AsyncClient, backend_secret: str,
    wrong: str,
) -> None:
    verifier = generate_token(48)
    code = await a_code(oauth, verifier)
    form = {"code": code, "redirect_uri": WEB_CALLBACK, "client_id": "shop-web",
            "code_verifier": verifier}
    headers: dict[str, str] = {}
    if wrong == "verifier":
        form["code_verifier"] = generate_token(48)
    elif wrong == "redirect_uri":
        form["redirect_uri"] = WEB_CALLBACK + "/other"
    else:
        del form["client_id"]
        headers = basic("shop-backend", backend_secret)
    assert_oauth_error(await exchange(client, form, headers), 400, "invalid_grant")


async def test_a_public_client_must_send_the_verifier(
    oauth: Callable[..., AsyncOAuth2Client], client: httpx.AsyncClient,
) -> None:
    code = await a_code(oauth, generate_token(48))
    answer = await exchange(client, {"code": code, "redirect_uri": WEB_CALLBACK,
                                     "client_id": "shop-web"})
    assert_oauth_error(answer, 400, "invalid_request")


async def test_a_code_expires_after_60_seconds(
    client: httpx.AsyncClient, graph: Monolith, backend_secret: str, accounts: dict[str, str],
) -> None:
    verifier = generate_token(48)
    code = new_authorization_code(
        "an-old-code", client_id="shop-web", user_id=accounts[ALICE[0]],
        redirect_uri=WEB_CALLBACK, scopes=SCOPES,
        code_challenge=create_s256_code_challenge(verifier), code_challenge_method="S256")
    assert code.expires_at - datetime.now(UTC) <= timedelta(seconds=60)
    expired = type(code)(**{**{f: getattr(code, f) for f in code.__slots__},
                            "expires_at": datetime.now(UTC) - timedelta(seconds=1)})
    await graph.identity.save_authorization_code(expired)
    answer = await exchange(client, {"code": "an-old-code", "redirect_uri": WEB_CALLBACK,
                                     "client_id": "shop-web", "code_verifier": verifier})
    assert_oauth_error(answer, 400, "invalid_grant")


async def test_codes_are_stored_as_digests(
    oauth: Callable[..., AsyncOAuth2Client], graph: Monolith,
) -> None:
    code = await a_code(oauth, generate_token(48))
    rows = await graph.db.read(lambda conn: conn.execute(select(authorization_codes)).all())
    assert [row.digest for row in rows] == [hashlib.sha256(code.encode()).hexdigest()]
    assert not any(code in str(value) for row in rows for value in row)


async def test_authlib_client_sees_a_replayed_code_as_invalid_grant(
    oauth: Callable[..., AsyncOAuth2Client],
) -> None:
    web = oauth()
    verifier = generate_token(48)
    url, _ = web.create_authorization_url(AUTHORIZE_URL, code_verifier=verifier)
    location = (await sign_in(web, url)).headers["location"]
    await web.fetch_token(TOKEN_URL, authorization_response=location, code_verifier=verifier)
    with pytest.raises(OAuthError) as caught:
        await web.fetch_token(TOKEN_URL, authorization_response=location,
                              code_verifier=verifier)
    assert caught.value.error == "invalid_grant"

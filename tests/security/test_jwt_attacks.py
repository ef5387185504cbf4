"""Forged, stale and misdirected access tokens through the real routes: each is a 401 problem
with ``WWW-Authenticate: Bearer … error="invalid_token"`` (RFC 6750), never a 5xx, on the fast
lane and through FastAPI alike; a valid token without the route's scope is a 403
``insufficient_scope``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest

from archway.config import Settings
from archway.kernel.ids import new_id
from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.security import forging
from tests.security.forging import app_key, claims, other_key, sign, with_raw

ALICE = "alice@archway.test"
EVERY_CUSTOMER_SCOPE = "profile orders:read orders:write"

# (method, path, body): guarded routes of each context, the fast lane's and FastAPI's
ROUTES = [
    ("GET", "/api/v2/users/me", None),  # fast lane
    ("GET", "/api/v1/users/me", None),
    ("GET", "/api/v2/orders", None),  # fast lane
    ("POST", "/api/v1/orders", {"lines": []}),  # fast lane, a command: refused before its body
    ("GET", "/api/v2/orders/{id}", None),
    ("GET", "/api/v1/reports/customers/{id}", None),
]

Forge = Callable[[Monolith, Settings, str], Awaitable[str]]
"""Makes one forged token for the user with this id."""


def signed(**overrides: Any) -> Forge:
    async def forge(graph: Monolith, settings: Settings, subject: str) -> str:
        payload = claims(settings.issuer, subject, EVERY_CUSTOMER_SCOPE, **overrides)
        return sign(await app_key(graph), payload)

    return forge


def raw_date(name: str, text: str) -> Forge:
    """The app's own signature over claims whose ``name`` is the JSON text ``text``."""

    async def forge(graph: Monolith, settings: Settings, subject: str) -> str:
        payload = claims(settings.issuer, subject, EVERY_CUSTOMER_SCOPE)
        return sign(await app_key(graph), with_raw(payload, **{name: text}))

    return forge


async def alg_none(graph: Monolith, settings: Settings, subject: str) -> str:
    payload = claims(settings.issuer, subject, EVERY_CUSTOMER_SCOPE)
    return forging.unsigned(payload, (await app_key(graph)).kid)


async def alg_none_with_a_signature(graph: Monolith, settings: Settings, subject: str) -> str:
    return await alg_none(graph, settings, subject) + "c2lnbmF0dXJl"


async def hs256_public_key(graph: Monolith, settings: Settings, subject: str) -> str:
    payload = claims(settings.issuer, subject, EVERY_CUSTOMER_SCOPE)
    return forging.hs256_with_public_key(await app_key(graph), payload)


async def bad_signature(graph: Monolith, settings: Settings, subject: str) -> str:
    impostor = other_key((await app_key(graph)).kid)  # the app's kid, another key
    return sign(impostor, claims(settings.issuer, subject, EVERY_CUSTOMER_SCOPE))


async def tampered_roles(graph: Monolith, settings: Settings, subject: str) -> str:
    header, _, signature = (await signed()(graph, settings, subject)).split(".")
    body = forging.b64(orjson.dumps(
        claims(settings.issuer, subject, EVERY_CUSTOMER_SCOPE, roles=["admin"])))
    return f"{header}.{body}.{signature}"


async def unknown_kid(graph: Monolith, settings: Settings, subject: str) -> str:
    return sign(other_key("not-a-key-of-ours"),
                claims(settings.issuer, subject, EVERY_CUSTOMER_SCOPE))


async def path_in_kid(graph: Monolith, settings: Settings, subject: str) -> str:
    payload = claims(settings.issuer, subject, EVERY_CUSTOMER_SCOPE)
    return sign(await app_key(graph), payload, kid="../../../etc/passwd")


async def not_an_access_token(graph: Monolith, settings: Settings, subject: str) -> str:
    payload = claims(settings.issuer, subject, EVERY_CUSTOMER_SCOPE)
    return sign(await app_key(graph), payload, typ="JWT")


NOW = int(time.time())
ATTACKS: list[Any] = [
    pytest.param(alg_none, id="alg-none"),
    pytest.param(alg_none_with_a_signature, id="alg-none-with-a-signature"),
    pytest.param(hs256_public_key, id="hs256-signed-with-the-public-key"),
    pytest.param(bad_signature, id="bad-signature"),
    pytest.param(tampered_roles, id="tampered-payload"),
    pytest.param(unknown_kid, id="unknown-kid"),
    pytest.param(path_in_kid, id="path-traversal-kid"),
    pytest.param(not_an_access_token, id="typ-jwt"),
    pytest.param(signed(exp=NOW - 60), id="expired"),
    pytest.param(signed(nbf=NOW + 600), id="nbf-in-the-future"),
    pytest.param(signed(iat=NOW + 600, nbf=None), id="iat-in-the-future-without-nbf"),
    pytest.param(signed(iss="https://evil.test"), id="wrong-iss"),
    pytest.param(signed(aud="another-api"), id="wrong-aud"),
    pytest.param(signed(aud=["another-api", "more"]), id="wrong-aud-list"),
    pytest.param(signed(sub=None), id="missing-sub"),
    pytest.param(signed(exp=None), id="missing-exp"),
    pytest.param(signed(iat=None), id="missing-iat"),
    pytest.param(signed(jti=None), id="missing-jti"),
    pytest.param(signed(sub=""), id="empty-sub"),
    pytest.param(signed(sub=12), id="numeric-sub"),
    pytest.param(signed(scope=["orders:read"]), id="scope-not-a-string"),
    pytest.param(signed(roles="admin"), id="roles-not-a-list"),
    *(pytest.param(raw_date(name, text), id=f"{name}-{label}")
      for name in ("exp", "nbf", "iat")
      for label, text in [
          ("nan", "NaN"), ("infinity", "Infinity"), ("minus-infinity", "-Infinity"),
          ("1e400", "1e400"), ("string", f'"{NOW + 300}"'), ("float", f"{NOW + 300}.5"),
          ("true", "true"), ("false", "false"), ("null", "null"), ("negative", "-1"),
          ("huge", "1" + "0" * 30), ("past-year-9999", "253402300800"), ("list", "[1]"),
          ("object", "{}")]),
]


async def refused(answer: httpx.Response) -> str:
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="archway", error="invalid_token"'), challenge
    body = answer.json()
    assert body["status"] == 401 and body["type"] == "/problems/unauthenticated"
    return str(body["detail"])


@pytest.mark.parametrize("forge", ATTACKS)
@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_a_forged_token_is_a_401_invalid_token(
    client: httpx.AsyncClient, graph: Monolith, settings: Settings, accounts: dict[str, str],
    forge: Forge, method: str, path: str, body: object,
) -> None:
    alice = accounts[ALICE]
    token = await forge(graph, settings, alice)
    answer = await client.request(
        method, path.format(id=alice), json=body, headers={"Authorization": f"Bearer {token}"})
    await refused(answer)


async def test_the_attacks_are_refused_for_their_own_reason(
    client: httpx.AsyncClient, graph: Monolith, settings: Settings, accounts: dict[str, str],
) -> None:
    """A forgery is told apart from a stale token: the detail names what was wrong."""
    alice = accounts[ALICE]
    expected = {
        signed(exp=NOW - 60): "expired", signed(nbf=NOW + 600): "not valid yet",
        signed(iss="https://evil.test"): "issued by someone else",
        signed(aud="another-api"): "another audience", unknown_kid: "unknown key",
        alg_none: "signed JWT", hs256_public_key: "algorithm", bad_signature: "signature",
        raw_date("exp", "NaN"): "NumericDate", signed(sub=None): "'sub'",
    }
    for forge, words in expected.items():
        token = await forge(graph, settings, alice)
        answer = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert words in await refused(answer)


@pytest.mark.parametrize("authorization", [
    "Bearer", "Bearer ", "Basic YWxpY2U6c2VjcmV0", "Bearer a b", "bearer x.y", "Bearer ....",
    "Bearer " + "a" * 10_000, "Bearer e30.e30.e30", "Bearer \u00e9.\u00e9.\u00e9",
])
async def test_a_malformed_authorization_header_is_a_401(
    client: httpx.AsyncClient, authorization: str
) -> None:
    answer = await client.get(
        "/api/v1/users/me", headers={b"authorization": authorization.encode("utf-8")})
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"].startswith('Bearer realm="archway"')
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_deleted_users_token_is_a_401_on_every_route(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str],
) -> None:
    alice_id = accounts[ALICE]
    alice = await auth_headers(ALICE, EVERY_CUSTOMER_SCOPE)
    assert (await client.delete(f"/api/v1/users/{alice_id}", headers=alice)).status_code == 204
    for method, path, body in ROUTES:
        answer = await client.request(
            method, path.format(id=alice_id), json=body, headers=alice)
        assert "no longer exists" in await refused(answer)


@pytest.mark.parametrize(("method", "path", "body", "scope", "needed"), [
    ("GET", "/api/v2/users/me", None, "orders:read", "profile"),
    ("GET", "/api/v2/orders", None, "profile", "orders:read"),
    ("POST", "/api/v1/orders", {"lines": []}, "orders:read", "orders:write"),
    ("GET", "/api/v1/orders/{id}", None, "orders:write", "orders:read"),
    ("POST", "/api/v2/orders/{id}/cancel", None, "orders:read", "orders:write"),
    ("GET", "/api/v1/reports/customers/{id}", None, "profile", "orders:read"),
    ("GET", "/api/v1/reports/top-products", None, "orders:read", "reports:read"),
    ("GET", "/api/v2/users/{id}", None, "orders:read", "profile"),
])
async def test_a_token_without_the_routes_scope_is_a_403_insufficient_scope(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str],
    method: str, path: str, body: object, scope: str, needed: str,
) -> None:
    own = "/users/" in path or "/customers/" in path  # her own id; an order's needs none
    answer = await client.request(
        method, path.format(id=accounts[ALICE] if own else new_id()), json=body,
        headers=await auth_headers(ALICE, scope))
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"] == (
        f'Bearer realm="archway", error="insufficient_scope", scope="{needed}"')

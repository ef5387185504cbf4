"""``POST /oauth/token``'s rate limit (identity/oauth_limits.py): a client that proves its secret
is counted as itself, wherever it calls from; everything else (a wrong secret, an unknown
client, a public client's bare ``client_id``, no credentials) against the caller's address, so
nobody without the secret can spend a client's quota. Each request is counted once, and its
client authenticated once."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from archway.config import Settings
from archway.identity.domain import OAuthClient
from archway.identity.service import ClientSpec
from archway.kernel.db import Database
from archway.topologies.monolith import Monolith
from tests.rate_limiting import Limited, calling, remaining

MACHINE = ClientSpec("reporting", "Reporting job", public=False,
                     grant_types=frozenset({"client_credentials"}),
                     scopes=frozenset({"reports:read"}))
PUBLIC = ClientSpec("spa", "A browser app", public=True,
                    grant_types=frozenset({"authorization_code", "refresh_token"}),
                    scopes=frozenset({"profile"}), redirect_uris=("http://127.0.0.1/cb",))
TOKEN = {"grant_type": "client_credentials", "scope": "reports:read"}
QUOTAS = {"rate_limit_default_auth": 3, "rate_limit_anonymous_auth": 2}


@pytest.fixture(autouse=True)
def insecure_transport_for_testserver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the issuer is http://testserver


@pytest.fixture
async def secret(graph: Monolith, database: Database) -> str:
    _, shown = await graph.identity.register_client(MACHINE)
    await graph.identity.register_client(PUBLIC)
    assert shown is not None
    return shown


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def test_a_client_that_proves_its_secret_is_counted_as_itself_from_any_address(
    limited: Limited, secret: str
) -> None:
    app = limited(**QUOTAS)
    async with calling(app, "192.0.2.1") as first, calling(app, "192.0.2.2") as second:
        answers = [await first.post("/oauth/token", data=TOKEN, headers=basic("reporting", secret)),
                   await second.post("/oauth/token", data={
                       **TOKEN, "client_id": "reporting", "client_secret": secret}),
                   await first.post("/oauth/token", data=TOKEN, headers=basic("reporting", secret))]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert [remaining(a)[:2] for a in answers] == [
            ("default-auth", 2), ("default-auth", 1), ("default-auth", 0)]
        assert answers[0].headers["ratelimit-policy"] == '"default-auth";q=3;w=60'
        over = await second.post("/oauth/token", data=TOKEN, headers=basic("reporting", secret))
        assert over.status_code == 429, over.text
        assert over.headers["content-type"] == "application/problem+json"
        assert int(over.headers["retry-after"]) >= 1 and remaining(over)[:2] == ("default-auth", 0)
        # Neither address spent anything of its own: registering is still open to both.
        signed_up = await first.post("/api/v1/users", json={
            "email": "rl-token@archway.test", "password": "long-enough-pw", "name": "R L"})
        assert signed_up.status_code == 201 and remaining(signed_up)[:2] == ("anonymous-auth", 1)


@pytest.mark.parametrize("credentials", [
    {"headers": basic("reporting", "not-the-secret")},
    {"data": {**TOKEN, "client_id": "reporting", "client_secret": "not-the-secret"}},
    {"headers": basic("nobody", "whatever")},
    {"data": TOKEN},  # no credentials at all
    {"data": {"scope": "reports:read"}, "headers": basic("reporting", "x")},  # no grant_type
], ids=["wrong-basic", "wrong-post", "unknown-client", "none", "malformed"])
async def test_an_unproven_client_is_counted_against_the_address_not_the_client(
    limited: Limited, secret: str, credentials: dict[str, Any]
) -> None:
    app = limited(**QUOTAS)
    async with calling(app, "198.51.100.7") as attacker, calling(app, "192.0.2.1") as owner:
        data = credentials.get("data", TOKEN)
        headers = credentials.get("headers", {})
        tries = [await attacker.post("/oauth/token", data=data, headers=headers)
                 for _ in range(3)]
        assert [t.status_code for t in tries[:2]] != [200, 200]  # refused by Authlib …
        assert [remaining(t)[:2] for t in tries[:2]] == [
            ("anonymous-auth", 1), ("anonymous-auth", 0)]
        assert tries[2].status_code == 429  # … then by the address's quota
        # The real client's quota is whole.
        mine = await owner.post("/oauth/token", data=TOKEN, headers=basic("reporting", secret))
        assert mine.status_code == 200 and remaining(mine)[:2] == ("default-auth", 2)


async def test_a_public_client_by_its_bare_id_is_counted_against_the_address(
    limited: Limited, secret: str
) -> None:
    app = limited(**QUOTAS)
    form = {"grant_type": "authorization_code", "client_id": "spa", "code": "no-such-code",
            "redirect_uri": "http://127.0.0.1/cb", "code_verifier": "v" * 43}
    async with calling(app, "198.51.100.8") as http:
        answers = [await http.post("/oauth/token", data=form) for _ in range(3)]
    assert [a.status_code for a in answers] == [400, 400, 429]
    assert answers[0].json()["error"] == "invalid_grant"  # authenticated ("none"), then refused
    assert remaining(answers[0])[:2] == ("anonymous-auth", 1)


async def test_a_listed_partner_client_gets_the_partner_quota(
    limited: Limited, secret: str
) -> None:
    async with calling(limited(rate_limit_partners=["reporting"])) as http:
        answer = await http.post("/oauth/token", data=TOKEN, headers=basic("reporting", secret))
    assert answer.status_code == 200
    assert answer.headers["ratelimit-policy"].startswith('"partner-auth";')


async def test_the_client_is_authenticated_once_and_the_request_counted_once(
    limited: Limited, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[str] = []
    original = OAuthClient.check_secret

    def spy(self: OAuthClient, given: str) -> bool:
        checks.append(self.client_id)
        return original(self, given)

    monkeypatch.setattr(OAuthClient, "check_secret", spy)
    async with calling(limited(**QUOTAS)) as http:
        answer = await http.post("/oauth/token", data=TOKEN, headers=basic("reporting", secret))
    assert answer.status_code == 200 and checks == ["reporting"]
    assert remaining(answer)[:2] == ("default-auth", 2)  # one hit, not two


async def test_with_rate_limits_off_a_token_answer_has_no_rate_limit_headers(
    client: Any, secret: str, settings: Settings
) -> None:
    assert not settings.rate_limits
    answer = await client.post("/oauth/token", data=TOKEN, headers=basic("reporting", secret))
    assert answer.status_code == 200 and "ratelimit" not in answer.headers

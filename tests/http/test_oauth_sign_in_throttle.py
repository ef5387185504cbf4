"""The login page's growing delay after failed sign-ins (``identity.sign_ins``), through the
page as a browser submits it: refused attempts are 429 with the wrong-password message, a retry
hint and ``Retry-After``, hash no password, and look the same for an email that has no
account; two apps on one Redis count the same failures; Redis down lets sign-ins through."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import FastAPI

from archway.config import Settings
from archway.identity.sign_ins import SignInThrottle
from archway.kernel.db import Database
from archway.kernel.ratelimit.windows import MemoryWindows
from archway.topologies.monolith import Monolith, build, create_app
from tests.conftest import ALICE
from tests.http.test_oauth_authorization_code import (
    BROWSER,
    WEB_CALLBACK,
    hidden_fields,
    insecure_transport_for_testserver,  # noqa: F401  (a fixture, autouse here too)
)
from tests.http.test_rate_limits import CLOSED_PORT_REDIS
from tests.redis_server import require_redis

TIGHT = {"login_failures_before_delay": 2, "login_max_delay_seconds": 4,
         "login_failures_per_address": 1000}
HINT = re.compile(r"Too many failed sign-ins: try again in (\d+) seconds\.")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def registered(graph: Monolith, database: Database, accounts: dict[str, str]) -> None:
    await graph.identity.register_client(BROWSER)


Apps = Callable[..., Any]


@pytest.fixture
def apps(settings: Settings, graph: Monolith, registered: None) -> Apps:
    """``apps(**settings)``: a graph of its own (as another process would build) on the
    session's database, and its app; its password pool and failures store closed after."""

    @asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[tuple[FastAPI, Monolith]]:
        own = build(settings.model_copy(update={**TIGHT, **overrides}), db=graph.db)
        try:
            yield create_app(own.settings, graph=own), own
        finally:
            own.hasher.close()
            await own.identity.sign_ins.close()

    return make


@asynccontextmanager
async def browser(app: FastAPI, address: str = "192.0.2.1") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def attempt(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    """Open the login page for the browser client and submit it."""
    page = await client.get("/oauth/authorize", params={
        "response_type": "code", "client_id": BROWSER.client_id, "redirect_uri": WEB_CALLBACK,
        "scope": "profile", "state": "s", "code_challenge_method": "S256",
        "code_challenge": create_s256_code_challenge(generate_token(48))})
    assert page.status_code == 200, page.text
    form = {**hidden_fields(page.text), "email": email, "password": password,
            "action": "allow"}
    return await client.post("/oauth/authorize", data=form)


def outcome(answer: httpx.Response) -> tuple[int, str | None]:
    """The status and, for a refusal, its retry hint (which must agree with Retry-After)."""
    assert answer.status_code in (302, 401, 429), answer.text
    if answer.status_code == 429:
        hint = HINT.search(answer.text)
        assert hint is not None and "Wrong email or password." in answer.text
        assert answer.headers["retry-after"] == hint.group(1)
        return 429, hint.group(1)
    assert "retry-after" not in answer.headers and not HINT.search(answer.text)
    return answer.status_code, None


def count_hashing(graph: Monolith, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    for name in ("hash", "verify"):
        original = getattr(graph.hasher, name)

        async def spy(*args: Any, _original: Any = original, _name: str = name) -> Any:
            calls.append(_name)
            return await _original(*args)

        monkeypatch.setattr(graph.hasher, name, spy)
    return calls


async def test_failures_grow_the_delay_which_is_bounded_and_a_success_resets_it(
    apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with apps() as (app, own), browser(app) as client:
        clock = Clock()
        own.identity.sign_ins = SignInThrottle(MemoryWindows(clock=clock),
                                               own.identity.sign_ins.policy)
        hashing = count_hashing(own, monkeypatch)
        seen = []
        for _ in range(7):
            answer = outcome(await attempt(client, ALICE[0], "not her password"))
            if answer[0] == 429:
                seen.append(answer[1])
                clock.now += float(answer[1] or 0)
                answer = outcome(await attempt(client, ALICE[0], "not her password"))
            assert answer == (401, None)
        assert seen == ["1", "2", "4", "4", "4"]  # two free failures, doubling, capped at 4 s
        assert hashing.count("verify") == 7  # the refused attempts hashed nothing
        # the right password is refused too while the delay runs, unchecked …
        assert outcome(await attempt(client, ALICE[0], ALICE[1])) == (429, "4")
        assert hashing.count("verify") == 7
        clock.now += 4  # … and lets her in after it, which forgets her failures
        assert outcome(await attempt(client, ALICE[0], ALICE[1]))[0] == 302
        assert outcome(await attempt(client, ALICE[0], "not her password")) == (401, None)
        assert outcome(await attempt(client, ALICE[0], "not her password")) == (401, None)
        assert outcome(await attempt(client, ALICE[0], "x")) == (429, "1")


async def test_an_email_without_an_account_is_throttled_exactly_like_one_with(
    apps: Apps, monkeypatch: pytest.MonkeyPatch
) -> None:
    sequences = []
    for email in (ALICE[0], "nobody@example.com"):
        async with apps() as (app, own), browser(app) as client:
            hashing = count_hashing(own, monkeypatch)
            answers = [await attempt(client, email, "not the password") for _ in range(4)]
            pages = [re.sub(r'value="[^"]{20,}"', "", a.text) for a in answers]  # CSRF token
            sequences.append(([outcome(a) for a in answers], pages, len(hashing)))
    assert sequences[0] == sequences[1]
    assert sequences[0][0] == [(401, None), (401, None), (429, "1"), (429, "1")]
    assert sequences[0][2] == 2  # one hash (unknown) or verify (known) per checked attempt


async def test_an_address_failing_across_emails_is_refused_for_every_email(
    apps: Apps,
) -> None:
    async with apps(login_failures_per_address=3) as (app, _):
        async with browser(app, "192.0.2.7") as client:
            for n in range(3):
                assert outcome(await attempt(client, f"guess{n}@example.com", "x"))[0] == 401
            assert outcome(await attempt(client, ALICE[0], ALICE[1]))[0] == 429
        async with browser(app, "192.0.2.8") as elsewhere:
            assert outcome(await attempt(elsewhere, ALICE[0], ALICE[1]))[0] == 302


async def test_two_apps_on_one_redis_count_the_same_failures(apps: Apps) -> None:
    url = require_redis()
    run = uuid.uuid4()  # an account and an address no earlier run has counted
    email, address = f"ada-{run}@example.com", f"sign-in-{run}"
    async with (apps(redis_url=url) as (first, _), apps(redis_url=url) as (second, _),
                browser(first, address) as one, browser(second, address) as two):
        assert outcome(await attempt(one, email, "x")) == (401, None)
        assert outcome(await attempt(two, email, "x")) == (401, None)
        assert outcome(await attempt(one, email, "x")) == (429, "1")
        assert outcome(await attempt(two, email, "x")) == (429, "1")


async def test_redis_down_lets_sign_ins_through_logged_never_a_500(
    apps: Apps, caplog: pytest.LogCaptureFixture
) -> None:
    async with apps(redis_url=CLOSED_PORT_REDIS) as (app, _), browser(app) as client:
        with caplog.at_level(logging.WARNING, logger="archway.identity.sign_ins"):
            for _ in range(4):  # unthrottled: the store counts nothing
                assert outcome(await attempt(client, ALICE[0], "x")) == (401, None)
            assert outcome(await attempt(client, ALICE[0], ALICE[1]))[0] == 302
    assert any("cannot answer" in r.getMessage() for r in caplog.records)

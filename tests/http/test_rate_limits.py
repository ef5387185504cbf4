"""Rate limits on every path a request can take: quotas per plan and route class, per consumer
and per address, the headers on every kind of answer (fast lane, FastAPI routes, 304, 404,
problems), the 429's shape, and a store that is down (failing open or closed, never a 500).

Each test builds an app of its own on the session's graph with rate limits on (the session app
has them off), so counts start from zero and no other test's calls add up."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi import routing

from archway.identity.service import DEV_CLIENT_ID
from archway.topologies.monolith import Monolith
from tests.conftest import ALICE, BOB, AuthHeaders
from tests.ordering import stocked_product
from tests.rate_limiting import CLOSED_PORT_REDIS, Limited, calling, rejections, remaining
from tests.redis_server import require_redis


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths a FastAPI route handled (so not the fast lane)."""
    paths: list[str] = []
    original = routing.APIRoute.handle

    async def spy(self: routing.APIRoute, scope: Any, receive: Any, send: Any) -> None:
        paths.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(routing.APIRoute, "handle", spy)
    return paths


async def test_every_kind_of_answer_carries_the_headers_and_counts(
    limited: Limited, graph: Monolith, auth_headers: AuthHeaders, solved: list[str],
) -> None:
    alice = await auth_headers(ALICE[0], "profile orders:read orders:write")
    beans = await stocked_product(graph, "RL-1", on_hand=5)
    async with calling(limited()) as http:
        product = await http.get(f"/api/v1/products/{beans}")  # the fast lane's
        assert product.status_code == 200
        assert product.headers["ratelimit-policy"] == '"anonymous";q=300;w=60'
        assert product.headers["ratelimit"] == '"anonymous";r=299;t=60'
        answers = [
            await http.get(f"/api/v1/products/{beans}",
                           headers={"If-None-Match": product.headers["etag"]}),  # 304
            await http.get("/api/v1/nothing-here"),  # 404 problem
            await http.get("/api/v1/products?limit=0"),  # 422 problem, through FastAPI
            await http.head(f"/api/v2/products/{beans}"),  # HEAD, served as GET
            await http.get("/api/products", headers={"API-Version": "2"}),  # unversioned
            await http.get("/"),  # the landing page
        ]
        assert [a.status_code for a in answers] == [304, 404, 422, 200, 200, 200]
        for left, answer in zip(range(298, 292, -1), answers, strict=True):
            assert answer.headers["ratelimit-policy"] == '"anonymous";q=300;w=60'
            assert remaining(answer)[:2] == ("anonymous", left)

        me = await http.get("/api/v2/users/me", headers=alice)  # fast lane, with a token
        assert me.status_code == 200
        assert me.headers["ratelimit-policy"] == '"default";q=600;w=60'
        assert me.headers["ratelimit"] == '"default";r=599;t=60'  # PRODUCT.md's example
        # The lane answered those two itself: no FastAPI route ran for them.
        assert f"/api/v1/products/{beans}" not in solved and "/api/v2/users/me" not in solved
        assert "/api/v1/products" in solved  # the 422 above: FastAPI's (the spy sees routes)
        refused = await http.get("/api/v1/users/me")  # 401 problem: anonymous again
        assert refused.status_code == 401
        assert remaining(refused)[:2] == ("anonymous", 292)
        order = await http.post("/api/v1/orders", headers=alice, json={
            "lines": [{"product_id": beans, "quantity": 1}]})
        assert order.status_code == 202
        assert order.headers["ratelimit-policy"] == '"default-writes";q=120;w=60'
        assert remaining(order)[:2] == ("default-writes", 119)
    assert await graph.relays.settle()


async def test_a_quota_is_enforced_per_address_and_answered_429(limited: Limited) -> None:
    app = limited(rate_limit_anonymous_reads=3)
    async with calling(app, "192.0.2.7") as first, calling(app, "192.0.2.8") as second:
        assert [(await first.get("/api/v1/products")).status_code for _ in range(3)] == [200] * 3
        over = await first.get("/api/v1/products", headers={"X-Request-ID": "rl-429"})
        assert over.status_code == 429
        assert over.headers["content-type"] == "application/problem+json"
        problem = over.json()
        assert problem["type"] == "/problems/rate-limited"
        assert problem["status"] == 429 and problem["request_id"] == "rl-429"
        assert problem["instance"] == "/api/v1/products"
        retry_after = int(over.headers["retry-after"])  # integer seconds
        assert 1 <= retry_after <= 60
        assert over.headers["ratelimit-policy"] == '"anonymous";q=3;w=60'
        name, left, reset = remaining(over)
        assert (name, left) == ("anonymous", 0) and reset == retry_after
        # The fast lane's route is refused before the lane runs, as any other.
        assert (await first.get("/api/v1/products/anything")).status_code == 429
        # Another address has its own budget.
        other = await second.get("/api/v1/products")
        assert other.status_code == 200 and remaining(other)[1] == 2
        assert (await first.get("/healthz")).status_code == 200  # operations are not limited


async def test_a_quota_is_enforced_per_token_subject(
    limited: Limited, auth_headers: AuthHeaders
) -> None:
    alice = await auth_headers(ALICE[0], "profile")
    alice_again = await auth_headers(ALICE[0], "profile orders:read")  # another token, same user
    bob = await auth_headers(BOB[0], "profile")
    async with calling(limited(rate_limit_default_reads=2)) as http:
        assert (await http.get("/api/v2/users/me", headers=alice)).status_code == 200
        assert (await http.get("/api/v1/users/me", headers=alice_again)).status_code == 200
        over = await http.get("/api/v2/users/me", headers=alice)
        assert over.status_code == 429 and remaining(over)[:2] == ("default", 0)
        assert (await http.get("/api/v2/users/me", headers=bob)).status_code == 200
        # The same address without a token is anonymous: its own budget, its own plan.
        anonymous = await http.get("/api/v1/products")
        assert anonymous.status_code == 200 and remaining(anonymous)[0] == "anonymous"
        # A token that does not verify counts against the address, and the route refuses it.
        forged = await http.get("/api/v2/users/me", headers={"Authorization": "Bearer x.y.z"})
        assert forged.status_code == 401 and remaining(forged)[:2] == ("anonymous", 298)


async def test_registering_is_much_stricter_than_other_writes(limited: Limited) -> None:
    async with calling(limited(rate_limit_anonymous_auth=2)) as http:
        for n in range(2):
            created = await http.post("/api/v1/users", json={
                "email": f"rl-{n}@archway.test", "password": "long-enough-pw", "name": "R L"})
            assert created.status_code == 201, created.text
            assert created.headers["ratelimit-policy"] == '"anonymous-auth";q=2;w=60'
        over = await http.post("/api/v2/users", json={
            "email": "rl-3@archway.test", "password": "long-enough-pw", "name": "R L"})
        assert over.status_code == 429 and remaining(over)[:2] == ("anonymous-auth", 0)
        # Other writes of the same address are another class, with room left.
        write = await http.post("/api/v1/products", json={})
        assert write.status_code == 401
        assert remaining(write)[:2] == ("anonymous-writes", 59)


async def test_a_listed_client_is_on_the_partner_plan(
    limited: Limited, auth_headers: AuthHeaders
) -> None:
    alice = await auth_headers(ALICE[0], "profile")
    async with calling(limited(rate_limit_partners=[DEV_CLIENT_ID])) as http:
        me = await http.get("/api/v1/users/me", headers=alice)
        assert me.headers["ratelimit-policy"] == '"partner";q=6000;w=60'


async def test_refusals_are_counted_in_metrics(limited: Limited, graph: Monolith) -> None:
    def count(text: str) -> float:
        return rejections(text, "http", "writes")

    async with calling(limited(rate_limit_anonymous_writes=1)) as http:
        before = count((await http.get("/metrics")).text)
        statuses = [(await http.delete(f"/api/v1/products/{uuid.uuid4()}")).status_code
                    for _ in range(3)]
        assert statuses == [401, 429, 429]
        assert count((await http.get("/metrics")).text) == before + 2


async def test_cors_lets_a_browser_read_the_headers_and_the_refusal(limited: Limited) -> None:
    app = limited(rate_limit_anonymous_reads=1, cors_allow_origins=["https://shop.test"])
    async with calling(app) as http:
        origin = {"Origin": "https://shop.test"}
        assert (await http.get("/api/v1/products", headers=origin)).status_code == 200
        over = await http.get("/api/v1/products", headers=origin)
        assert over.status_code == 429
        assert over.headers["access-control-allow-origin"] == "https://shop.test"
        exposed = over.headers["access-control-expose-headers"]
        for name in ("RateLimit-Policy", "RateLimit", "Retry-After"):
            assert name in exposed.split(", ")


async def test_a_store_that_is_down_fails_open_and_readiness_says_so(limited: Limited) -> None:
    app = limited(redis_url=CLOSED_PORT_REDIS, rate_limit_fail_open=True)
    async with calling(app) as http:
        for _ in range(3):
            answer = await http.get("/api/v1/products")
            assert answer.status_code == 200
            assert "ratelimit" not in answer.headers and "ratelimit-policy" not in answer.headers
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
        assert ready.json()["details"]["rate_limits"] == {
            "status": "degraded", "storage": "redis", "store": "unreachable",
            "on_store_failure": "fail-open"}
        metrics = (await http.get("/metrics")).text
        assert re.search(r"^archway_rate_limit_store_failures_total [1-9]", metrics, re.M)


async def test_a_store_that_is_down_fails_closed_with_503_and_an_unready_process(
    limited: Limited
) -> None:
    app = limited(redis_url=CLOSED_PORT_REDIS, rate_limit_fail_open=False)
    async with calling(app) as http:
        for path in ("/api/v1/products", "/api/v2/users/me", "/api/v1/nothing-here"):
            answer = await http.get(path)
            assert answer.status_code == 503, path
            assert answer.headers["retry-after"] == "1"
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["type"] == "/problems/service-busy"
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["rate_limits"] == "failing"
        assert ready.json()["details"]["rate_limits"]["on_store_failure"] == "fail-closed"
        assert (await http.get("/healthz")).status_code == 200


async def test_two_apps_on_one_redis_share_one_budget(limited: Limited) -> None:
    url = require_redis()
    first = limited(redis_url=url, rate_limit_anonymous_reads=3)
    second = limited(redis_url=url, rate_limit_anonymous_reads=3)
    address = f"rl-{uuid.uuid4()}"  # a consumer no earlier run has counted
    async with calling(first, address) as one, calling(second, address) as two:
        assert (await one.get("/api/v1/products")).status_code == 200
        answer = await two.get("/api/v1/products")
        assert answer.status_code == 200 and remaining(answer)[1] == 1
        assert (await one.get("/api/v1/products")).status_code == 200
        over = await two.get("/api/v1/products")
        assert over.status_code == 429 and remaining(over)[1] == 0
        ready = await one.get("/readyz")
        assert ready.json()["details"]["rate_limits"] == {
            "status": "ok", "storage": "redis", "store": "reachable",
            "on_store_failure": "fail-open"}


async def test_a_forged_forwarded_for_from_an_untrusted_peer_does_not_change_the_bucket(
    limited: Limited,
) -> None:
    async with calling(limited(rate_limit_anonymous_reads=1), "192.0.2.30") as http:
        first = await http.get("/api/v1/products", headers={"X-Forwarded-For": "203.0.113.1"})
        assert first.status_code == 200
        for forged in ({"X-Forwarded-For": "203.0.113.2"}, {"Forwarded": "for=203.0.113.3"}):
            assert (await http.get("/api/v1/products", headers=forged)).status_code == 429


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket(
    limited: Limited,
) -> None:
    app = limited(rate_limit_anonymous_reads=1, trusted_proxies=["192.0.2.0/28"])
    async with calling(app, "192.0.2.5") as proxy:
        for client in ("203.0.113.1", "203.0.113.2"):
            answer = await proxy.get("/api/v1/products", headers={"X-Forwarded-For": client})
            assert answer.status_code == 200
        # What the client itself wrote left of the proxy's entry changes nothing.
        spoofed = await proxy.get("/api/v1/products",
                                  headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.1"})
        assert spoofed.status_code == 429
        assert (await proxy.get("/api/v1/products", headers={
            "Forwarded": 'for="[2001:db8::9]:4711"'})).status_code == 200
        # The proxy's own calls (no header) are its address's.
        assert (await proxy.get("/api/v1/products")).status_code == 200
        assert (await proxy.get("/api/v1/products")).status_code == 429

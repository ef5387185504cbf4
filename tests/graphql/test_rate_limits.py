"""Rate limits on GraphQL: one count per operation, a query as a read, a mutation as a write,
registering as auth (as REST's ``POST /users``), in REST's budgets; past the limit a 200 with a
``RATE_LIMITED`` error and ``retryAfter``, and REST's headers on the HTTP answer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from archway.topologies.monolith import Monolith
from tests.graphql.conftest import codes
from tests.rate_limiting import (
    CLOSED_PORT_REDIS,
    Limited,
    calling,
    fresh_address,
    rejections,
    remaining,
)

PRODUCTS = "{ products(first: 1) { edges { node { id } } } }"
CREATE = 'mutation { createProduct(input: {sku: "RL-G", name: "x", category: "games", ' \
         'price: {amount: 100, currency: "EUR"}}) { id } }'
REGISTER = 'mutation { register(input: {email: "%s@rl.test", password: "correct horse 1", ' \
           'name: "R"}) { id } }'


async def post(http: httpx.AsyncClient, query: str) -> tuple[httpx.Response, dict[str, Any]]:
    response = await http.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return response, body


async def test_queries_are_reads_and_past_the_limit_a_rate_limited_error(
    limited: Limited,
) -> None:
    app = limited(rate_limit_anonymous_reads=2)
    async with calling(app, fresh_address()) as http:
        for left in (1, 0):
            response, body = await post(http, PRODUCTS)
            assert "errors" not in body
            assert response.headers["ratelimit-policy"] == '"anonymous";q=2;w=60'
            assert remaining(response)[:2] == ("anonymous", left)
        response, body = await post(http, PRODUCTS)
        assert body["data"] is None and codes(body) == ["RATE_LIMITED"]
        error = body["errors"][0]
        retry_after = int(response.headers["retry-after"])
        assert error["extensions"]["retryAfter"] == retry_after and 1 <= retry_after <= 60
        assert "anonymous quota of 2" in error["message"]
        assert remaining(response)[1] == 0
        # One budget with REST: the address's reads are spent there too.
        assert (await http.get("/api/v1/products")).status_code == 429


async def test_a_mutation_is_one_write_and_registering_is_auth(limited: Limited) -> None:
    app = limited(rate_limit_anonymous_writes=1, rate_limit_anonymous_auth=1)
    async with calling(app, fresh_address()) as http:
        response, body = await post(http, CREATE)
        assert codes(body) == ["UNAUTHENTICATED"]  # refused, yet counted
        assert response.headers["ratelimit-policy"] == '"anonymous-writes";q=1;w=60'
        response, body = await post(http, CREATE)
        assert codes(body) == ["RATE_LIMITED"]
        response, body = await post(http, REGISTER % "first")
        assert response.headers["ratelimit-policy"] == '"anonymous-auth";q=1;w=60'
        # REST's registering shares that strict budget: GraphQL is no way around it.
        rest = await http.post("/api/v1/users", json={
            "email": "second@rl.test", "password": "correct horse 2", "name": "R"})
        assert rest.status_code == 429
        _, body = await post(http, REGISTER % "third")
        assert codes(body) == ["RATE_LIMITED"]


async def test_a_document_that_does_not_parse_counts_as_a_read(limited: Limited) -> None:
    app = limited(rate_limit_anonymous_reads=1)
    async with calling(app, fresh_address()) as http:
        response, body = await post(http, "{ products(")
        assert codes(body) == ["GRAPHQL_PARSE_FAILED"]
        assert remaining(response)[:2] == ("anonymous", 0)
        _, body = await post(http, PRODUCTS)
        assert codes(body) == ["RATE_LIMITED"]


async def test_refusals_are_counted_in_metrics_as_graphql(
    limited: Limited, graph: Monolith
) -> None:
    def count() -> float:
        return rejections(graph.metrics.render()[0].decode(), "graphql", "reads")

    before = count()
    async with calling(limited(rate_limit_anonymous_reads=1), fresh_address()) as http:
        for _ in range(3):
            await post(http, PRODUCTS)
    assert count() == before + 2


@pytest.mark.usefixtures("database")
def test_a_subscription_counts_once_when_it_subscribes(limited: Limited) -> None:
    """Over graphql-transport-ws: each subscribe is one read; past the limit the subscription
    gets the RATE_LIMITED error instead of its stream."""
    app = limited(rate_limit_anonymous_reads=1)
    subscribe = "subscription { orderUpdated(id: \"00000000-0000-7000-8000-000000000000\") " \
                "{ id } }"
    client = TestClient(app)  # no lifespan: the session app's runs the graph
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {}})
        assert ws.receive_json()["type"] == "connection_ack"
        answers = []
        for number in ("1", "2"):
            ws.send_json({"id": number, "type": "subscribe", "payload": {"query": subscribe}})
            message = ws.receive_json()
            while message.get("id") != number or message["type"] not in ("next", "error"):
                message = ws.receive_json()
            payload = message["payload"]
            errors = payload if isinstance(payload, list) else payload.get("errors", [])
            answers.append([error["extensions"]["code"] for error in errors])
        assert answers == [["UNAUTHENTICATED"], ["RATE_LIMITED"]]


async def test_a_store_that_is_down_and_failing_closed_is_service_busy(limited: Limited) -> None:
    app = limited(redis_url=CLOSED_PORT_REDIS, rate_limit_fail_open=False)
    async with calling(app, fresh_address()) as http:
        response, body = await post(http, PRODUCTS)
        assert body["data"] is None and codes(body) == ["SERVICE_BUSY"]
        assert "ratelimit" not in response.headers

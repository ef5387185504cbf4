"""placeOrder's idempotencyKey: one order per key and customer, the same key store as REST's
``Idempotency-Key`` on ``POST /orders`` (the key is kept with the order), whichever comes first."""

from __future__ import annotations

import httpx

from archway.kernel.auth.principal import Principal
from archway.kernel.pagination import PageRequest
from archway.topologies.monolith import Monolith
from tests.conftest import ALICE, BOB, AuthHeaders
from tests.graphql.conftest import Gql, codes
from tests.graphql.test_graphql_api import CUSTOMER, PLACE
from tests.ordering import stocked_product


async def orders_of(graph: Monolith, customer_id: str) -> int:
    await graph.relays.settle()
    reader = Principal(customer_id, scopes=frozenset({"orders:read"}))
    return len((await graph.order_queries.list_orders(reader, PageRequest(limit=100))).items)


async def test_a_retry_with_the_same_key_answers_the_first_order(
    gql: Gql, graph: Monolith, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    coffee = await stocked_product(graph, "COFFEE", on_hand=10)
    alice = await auth_headers(ALICE[0], CUSTOMER)
    lines = [{"productId": coffee, "quantity": 1}]
    first = await gql(PLACE, headers=alice, lines=lines, key="order-1")
    again = await gql(PLACE, headers=alice, lines=lines, key="order-1")
    assert again["data"]["placeOrder"]["id"] == first["data"]["placeOrder"]["id"]
    other = await gql(PLACE, headers=alice, lines=lines, key="order-2")
    assert other["data"]["placeOrder"]["id"] != first["data"]["placeOrder"]["id"]
    # A key is the customer's own: Bob's "order-1" is his own order.
    bobs = await gql(PLACE, headers=await auth_headers(BOB[0], CUSTOMER), lines=lines,
                     key="order-1")
    assert bobs["data"]["placeOrder"]["id"] != first["data"]["placeOrder"]["id"]
    assert await orders_of(graph, accounts[ALICE[0]]) == 2


async def test_rest_and_graphql_share_a_customers_keys(
    gql: Gql, client: httpx.AsyncClient, graph: Monolith, auth_headers: AuthHeaders,
    accounts: dict[str, str],
) -> None:
    coffee = await stocked_product(graph, "COFFEE", on_hand=10)
    alice = await auth_headers(ALICE[0], CUSTOMER)
    body = {"lines": [{"product_id": coffee, "quantity": 1}]}
    rest = await client.post("/api/v2/orders", json=body,
                             headers={**alice, "Idempotency-Key": "shared-1"})
    assert rest.status_code == 202
    via_graphql = await gql(PLACE, headers=alice, lines=[{"productId": coffee, "quantity": 1}],
                            key="shared-1")
    assert via_graphql["data"]["placeOrder"]["id"] == rest.json()["id"]

    placed = await gql(PLACE, headers=alice, lines=[{"productId": coffee, "quantity": 1}],
                       key="shared-2")
    later = await client.post("/api/v2/orders", json=body,
                              headers={**alice, "Idempotency-Key": "shared-2"})
    assert later.status_code == 202
    assert later.json()["id"] == placed["data"]["placeOrder"]["id"]
    assert await orders_of(graph, accounts[ALICE[0]]) == 2


async def test_a_key_rest_would_refuse_is_bad_user_input(
    gql: Gql, graph: Monolith, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    coffee = await stocked_product(graph, "COFFEE", on_hand=10)
    alice = await auth_headers(ALICE[0], CUSTOMER)
    for key in ("", "with space", "x" * 256, "é"):
        answer = await gql(PLACE, headers=alice, lines=[{"productId": coffee, "quantity": 1}],
                           key=key)
        assert codes(answer) == ["BAD_USER_INPUT"], key
        assert answer["errors"][0]["extensions"]["fields"][0]["path"] == ["idempotencyKey"]
    assert await orders_of(graph, accounts[ALICE[0]]) == 0


async def test_the_idempotency_key_header_on_post_graphql_is_rests_middleware(
    client: httpx.AsyncClient, graph: Monolith, auth_headers: AuthHeaders,
    accounts: dict[str, str],
) -> None:
    coffee = await stocked_product(graph, "COFFEE", on_hand=10)
    alice = {**await auth_headers(ALICE[0], CUSTOMER), "Idempotency-Key": "header-1"}
    body = {"query": PLACE, "variables": {"lines": [{"productId": coffee, "quantity": 1}]}}
    first = await client.post("/graphql", json=body, headers=alice)
    again = await client.post("/graphql", json=body, headers=alice)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = {**body, "variables": {"lines": [{"productId": coffee, "quantity": 2}]}}
    mismatch = await client.post("/graphql", json=other, headers=alice)
    assert mismatch.status_code == 422  # another request under the same key, as for REST
    assert await orders_of(graph, accounts[ALICE[0]]) == 1

"""``Idempotency-Key`` on ``POST /orders``: a storm of retries places one order, holds stock
once."""

from __future__ import annotations

import asyncio

import httpx

from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.http.test_orders_api import ALICE, settled
from tests.ordering import stock_of, stocked_product

CONCURRENT = 50


async def test_fifty_concurrent_posts_with_one_key_place_one_order(
    graph: Monolith, client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    alice = await auth_headers(ALICE, "orders:read orders:write")
    beans = await stocked_product(graph, "IDEM-1", on_hand=10)
    headers = {**alice, "Idempotency-Key": "checkout-7f3a"}
    body = {"lines": [{"product_id": beans, "quantity": 2}]}

    async def post() -> httpx.Response:
        return await client.post("/api/v1/orders", headers=headers, json=body)

    responses = await asyncio.wait_for(
        asyncio.gather(*(post() for _ in range(CONCURRENT))), timeout=20)

    statuses = sorted({r.status_code for r in responses})
    assert set(statuses) <= {202, 409}, [(r.status_code, r.text) for r in responses][:5]
    accepted = [r for r in responses if r.status_code == 202]
    first = [r for r in accepted if "idempotent-replayed" not in r.headers]
    assert len(first) == 1, [dict(r.headers) for r in accepted]
    order_id = first[0].json()["id"]
    for replayed in accepted:
        assert replayed.json()["id"] == order_id
        assert replayed.headers["location"] == f"/api/v1/orders/{order_id}"
        if replayed is not first[0]:
            assert replayed.headers["idempotent-replayed"] == "true"
    for in_flight in (r for r in responses if r.status_code == 409):
        assert in_flight.headers["content-type"] == "application/problem+json"
        assert "idempotent-replayed" not in in_flight.headers

    # Retries after the storm, concurrent too, replay the first answer byte for byte.
    again = await asyncio.wait_for(asyncio.gather(*(post() for _ in range(10))), timeout=10)
    for replayed in again:
        assert replayed.status_code == 202, replayed.text
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.headers["location"] == f"/api/v1/orders/{order_id}"
        assert replayed.content == first[0].content

    # One order exists, and the stock was reserved once.
    assert (await settled(client, alice, order_id))["status"] == "confirmed"
    listing = (await client.get("/api/v1/orders", headers=alice)).json()
    assert listing["total"] == 1
    assert [o["id"] for o in listing["items"]] == [order_id]
    assert await graph.relays.settle()
    assert await stock_of(graph, beans) == (10, 2)


async def test_the_same_key_with_another_body_is_refused_and_places_nothing(
    graph: Monolith, client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    alice = await auth_headers(ALICE, "orders:read orders:write")
    beans = await stocked_product(graph, "IDEM-2", on_hand=10)
    headers = {**alice, "Idempotency-Key": "checkout-9c1d"}
    first = await client.post("/api/v1/orders", headers=headers, json={
        "lines": [{"product_id": beans, "quantity": 1}]})
    assert first.status_code == 202
    changed = await client.post("/api/v1/orders", headers=headers, json={
        "lines": [{"product_id": beans, "quantity": 3}]})
    assert changed.status_code == 422
    assert "idempotent-replayed" not in changed.headers
    assert (await settled(client, alice, first.json()["id"]))["status"] == "confirmed"
    assert (await client.get("/api/v1/orders", headers=alice)).json()["total"] == 1
    assert await graph.relays.settle()
    assert await stock_of(graph, beans) == (10, 1)


async def test_a_replay_answers_no_caller_the_route_would_refuse(
    graph: Monolith, client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    writer = await auth_headers(ALICE, "orders:read orders:write")
    reader = await auth_headers(ALICE, "orders:read")  # the same customer, without the scope
    beans = await stocked_product(graph, "IDEM-3", on_hand=10)
    body = {"lines": [{"product_id": beans, "quantity": 1}]}
    key = {"Idempotency-Key": "checkout-auth"}
    first = await client.post("/api/v1/orders", headers={**writer, **key}, json=body)
    assert first.status_code == 202
    await graph.idempotency.answers.flush()

    for caller, status in ((reader, 403), ({}, 401),
                           ({"Authorization": "Bearer not-a-token"}, 401)):
        refused = await client.post("/api/v1/orders", headers={**caller, **key}, json=body)
        assert refused.status_code == status, refused.text
        assert "idempotent-replayed" not in refused.headers
        assert refused.headers["content-type"] == "application/problem+json"
    replayed = await client.post("/api/v1/orders", headers={**writer, **key}, json=body)
    assert replayed.status_code == 202 and replayed.headers["idempotent-replayed"] == "true"
    assert replayed.content == first.content
    order_id = first.json()["id"]
    assert (await settled(client, writer, order_id))["status"] == "confirmed"
    assert (await client.get("/api/v1/orders", headers=writer)).json()["total"] == 1

    # A refusal of the caller is not the key's answer: the caller with the scope runs.
    cancel, again = f"/api/v1/orders/{order_id}/cancel", {"Idempotency-Key": "cancel-auth"}
    refused = await client.post(cancel, headers={**reader, **again})
    assert refused.status_code == 403
    cancelled = await client.post(cancel, headers={**writer, **again})
    assert cancelled.status_code == 202 and "idempotent-replayed" not in cancelled.headers
    assert cancelled.json()["status"] == "cancelled"


async def test_a_json_body_with_other_whitespace_and_key_order_replays(
    graph: Monolith, client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    alice = await auth_headers(ALICE, "orders:read orders:write")
    beans = await stocked_product(graph, "IDEM-4", on_hand=10)
    headers = {**alice, "Idempotency-Key": "checkout-json", "content-type": "application/json"}
    first = await client.post("/api/v1/orders", headers=headers, content=(
        '{"lines": [{"product_id": "' + beans + '", "quantity": 1}]}').encode())
    again = await client.post("/api/v1/orders", headers=headers, content=(
        '{ "lines":[ {"quantity":1,\n"product_id":"' + beans + '"} ] }').encode())
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content

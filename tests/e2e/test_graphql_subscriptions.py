"""orderUpdated(id) over graphql-transport-ws, with a real websocket client against a real
server: the order now, each new state, and completion once it is cancelled; the same
authorization as reading the order."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.e2e

SUBSCRIBE = "subscription($id: ID!) { orderUpdated(id: $id) { id status total { amount } } }"
WAIT_SECONDS = 15


def token(server: RunningServer, email: str) -> str:
    return server.cli("token", "--user", email, "--scope", "orders:read orders:write").strip()


async def graphql(server: RunningServer, query: str, bearer: str, **variables: Any) -> Any:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=WAIT_SECONDS) as client:
        answer = await client.post("/graphql", json={"query": query, "variables": variables},
                                   headers={"Authorization": f"Bearer {bearer}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT_SECONDS))
    return message


async def subscribed(server: RunningServer, bearer: str | None, order_id: str) -> ClientConnection:
    url = server.base_url.replace("http://", "ws://") + "/graphql"
    ws = await connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    payload = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    assert (await receive(ws))["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
        "query": SUBSCRIBE, "variables": {"id": order_id}}}))
    return ws


async def test_order_updated_streams_each_state_until_the_order_is_cancelled(
    server: RunningServer
) -> None:
    alice = token(server, "alice@archway.test")
    products = await graphql(server, "{ products(first: 1) { edges { node { id } } } }", alice)
    product = products["data"]["products"]["edges"][0]["node"]["id"]
    placed = await graphql(server, """mutation($p: ID!) { placeOrder(input: {lines: [
        {productId: $p, quantity: 1}]}) { id } }""", alice, p=product)
    order_id = placed["data"]["placeOrder"]["id"]

    ws = await subscribed(server, alice, order_id)
    try:
        seen = []
        while not seen or seen[-1] != "CONFIRMED":  # pending (maybe), then confirmed by the saga
            message = await receive(ws)
            assert message["type"] == "next", message
            assert message["payload"]["data"]["orderUpdated"]["id"] == order_id
            seen.append(message["payload"]["data"]["orderUpdated"]["status"])
        assert set(seen) <= {"PENDING", "CONFIRMED"}
        await graphql(server, "mutation($id: ID!) { cancelOrder(id: $id) { id } }", alice,
                      id=order_id)
        message = await receive(ws)
        assert message["payload"]["data"]["orderUpdated"]["status"] == "CANCELLED"
        assert (await receive(ws)) == {"id": "1", "type": "complete"}
    finally:
        await ws.close()


async def test_order_updated_follows_the_read_rules(server: RunningServer) -> None:
    alice, bob = token(server, "alice@archway.test"), token(server, "bob@archway.test")
    products = await graphql(server, "{ products(first: 1) { edges { node { id } } } }", alice)
    product = products["data"]["products"]["edges"][0]["node"]["id"]
    placed = await graphql(server, """mutation($p: ID!) { placeOrder(input: {lines: [
        {productId: $p, quantity: 1}]}) { id } }""", alice, p=product)
    order_id = placed["data"]["placeOrder"]["id"]
    for bearer, code in ((bob, "NOT_FOUND"), (None, "UNAUTHENTICATED"),
                         ("not-a-token", "UNAUTHENTICATED")):
        ws = await subscribed(server, bearer, order_id)
        try:
            message = await receive(ws)
            errors = message["payload"] if message["type"] == "error" else (
                message["payload"]["errors"])
            assert [error["extensions"]["code"] for error in errors] == [code], message
        finally:
            await ws.close()

"""The fast lane answers exactly as the FastAPI routes do, and only the plain cases.

Every request below is sent to the app twice: with the lane (the default) and to a twin app on
the same graph with ``fast_lane=False``. Status, headers (but the per-request id) and body must
be equal. A spy on FastAPI's route handling shows which requests the lane answered itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import routing

from archway.config import Settings
from archway.topologies.monolith import Monolith, create_app
from tests.conftest import ALICE, AuthHeaders
from tests.ordering import stocked_product

Request = tuple[str, dict[str, str]]


@pytest.fixture
async def slow(
    settings: Settings, graph: Monolith, client: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same graph whose app has no fast lane (the session app runs the
    lifespan; this twin only routes)."""
    twin = create_app(settings.model_copy(update={"fast_lane": False}), graph=graph)
    transport = httpx.ASGITransport(app=twin)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths a FastAPI route handled (so it, not the lane, answered them)."""
    paths: list[str] = []
    original = routing.APIRoute.handle

    async def spy(self: routing.APIRoute, scope: Any, receive: Any, send: Any) -> None:
        paths.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(routing.APIRoute, "handle", spy)
    return paths


def comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}
    body: Any = response.content
    if response.headers.get("content-type", "").endswith("json"):
        body = orjson.loads(response.content)
        if isinstance(body, dict):
            body.pop("request_id", None)
    return response.status_code, headers, body


async def assert_same(
    fast: httpx.AsyncClient, slow: httpx.AsyncClient, requests: list[Request]
) -> None:
    for path, headers in requests:
        assert comparable(await fast.get(path, headers=headers)) == comparable(
            await slow.get(path, headers=headers)), path


async def test_the_plain_hot_reads_are_answered_by_the_lane_exactly_as_by_the_routes(
    graph: Monolith, client: httpx.AsyncClient, slow: httpx.AsyncClient,
    auth_headers: AuthHeaders, solved: list[str],
) -> None:
    alice = await auth_headers(ALICE[0], "profile orders:read orders:write")
    beans = await stocked_product(graph, "FAST-1", on_hand=50)
    for _ in range(3):
        placed = await client.post("/api/v1/orders", headers=alice, json={
            "lines": [{"product_id": beans, "quantity": 1}]})
        assert placed.status_code == 202
    assert await graph.relays.settle()
    etag = (await client.get(f"/api/v1/products/{beans}")).headers["etag"]
    second_page = (await client.get("/api/v2/orders?limit=2", headers=alice)).json()["next_cursor"]
    plain: list[Request] = [
        (f"/api/v1/products/{beans}", {}),
        (f"/api/v2/products/{beans}", {}),
        (f"/api/products/{beans}", {"API-Version": "2"}),
        (f"/api/v1/products/{beans}", {"If-None-Match": etag}),
        ("/api/v1/products", {}),
        ("/api/v1/products?limit=2&offset=1", {}),
        ("/api/v2/products?limit=1", {}),
        ("/api/v1/users/me", alice),
        ("/api/v2/users/me", alice),
        ("/api/v1/orders?limit=2", alice),
        ("/api/v2/orders?limit=2", alice),
        (f"/api/v2/orders?limit=2&cursor={second_page}", alice),
    ]
    solved.clear()
    await assert_same(client, slow, plain)
    # A FastAPI route handled each request once: in the twin, never in the app with the lane.
    routed = [path.split("?")[0].replace("/api/products", "/api/v2/products")
              for path, _ in plain]
    assert solved == routed


async def test_everything_but_the_plain_case_falls_through_to_the_routes(
    graph: Monolith, client: httpx.AsyncClient, slow: httpx.AsyncClient,
    auth_headers: AuthHeaders, solved: list[str],
) -> None:
    alice = await auth_headers(ALICE[0], "profile orders:read")
    no_scope = await auth_headers(ALICE[0], "orders:write")
    admin = await auth_headers("admin@archway.test", "catalog:write")
    beans = await stocked_product(graph, "FAST-2", on_hand=5)
    unusual: list[Request] = [
        ("/api/v1/products?limit=0", {}),
        ("/api/v1/products?limit=abc", {}),
        ("/api/v1/products?limit=101", {}),
        ("/api/v1/products?offset=-1", {}),
        ("/api/v1/products?sort=-price", {}),
        ("/api/v1/products?q=bean", {}),
        ("/api/v1/products?limit=2&limit=3", {}),
        (f"/api/v1/products/{beans}", admin),
        (f"/api/v1/products/{beans}?x=1", {}),
        ("/api/v1/users/me", {}),
        ("/api/v1/users/me", {"Authorization": "Bearer forged"}),
        ("/api/v1/users/me", no_scope),
        ("/api/v1/orders", no_scope),
        ("/api/v1/orders", {**alice, "Consistency-Token": "garbage"}),
        ("/api/v1/orders?limit=1000", alice),
    ]
    solved.clear()
    await assert_same(client, slow, unusual)
    # Every one of them reached FastAPI in both apps.
    assert solved == [path.split("?")[0] for path, _ in unusual for _app in ("lane", "twin")]


async def test_odd_inputs_that_the_shared_code_refuses_are_answered_by_the_lane_as_by_the_routes(
    client: httpx.AsyncClient, slow: httpx.AsyncClient, auth_headers: AuthHeaders,
    solved: list[str],
) -> None:
    """Inputs in the plain form that the service or the paging refuses: the lane started the
    work, so it answers (once) with the problem the route gives."""
    alice = await auth_headers(ALICE[0], "profile orders:read")
    odd: list[Request] = [
        ("/api/v1/products/not-an-id", {}),
        ("/api/v2/products/0190a1b2-0000-7000-8000-000000000000", {}),
        ("/api/v2/products/%E2%82%AC", {}),  # outside Latin-1 (v1's successor Link: not here)
        ("/api/v2/products/%FF%FE", {}),
        ("/api/v2/products/a%00b", {}),
        ("/api/v2/products/a%0D%0AX-Evil:%201", {}),
        ("/api/v1/products/x%3E%3B%20rel%3D%22evil", {}),
        ("/api/v2/products/%20", {}),
        ("/api/v2/products/" + "x" * 2000, {}),
        ("/api/v2/products?cursor=not-a-cursor", {}),
        ("/api/v2/products?cursor=eyJ4IjoxfQ", {}),
        ("/api/v2/products?limit=2&cursor=bm90LWpzb24", {}),
        ("/api/v2/orders?cursor=not-a-cursor", alice),
    ]
    solved.clear()
    await assert_same(client, slow, odd)
    for path, headers in odd:
        assert (await client.get(path, headers=headers)).status_code in (404, 422), path
    # Only the twin reached FastAPI: the lane answered every one itself.
    assert len(solved) == len(odd)


def without_identity(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    """A command's answer but for what names its one order: id, times, location, token."""
    status, headers, body = comparable(response)
    for name in ("location", "consistency-token", "content-length"):
        headers.pop(name, None)
    if isinstance(body, dict):
        for name in ("id", "placed_at", "updated_at"):
            body.pop(name, None)
    return status, headers, body


async def test_a_plain_order_is_placed_by_the_lane_as_by_the_route(
    graph: Monolith, client: httpx.AsyncClient, slow: httpx.AsyncClient,
    auth_headers: AuthHeaders, solved: list[str],
) -> None:
    alice = await auth_headers(ALICE[0], "orders:read orders:write")
    beans = await stocked_product(graph, "FAST-3", on_hand=50)
    body = {"lines": [{"product_id": beans, "quantity": 2}]}
    for version in ("v1", "v2"):
        solved.clear()
        fast = await client.post(f"/api/{version}/orders", headers=alice, json=body)
        assert solved == []  # the lane placed it
        routed = await slow.post(f"/api/{version}/orders", headers=alice, json=body)
        assert solved == [f"/api/{version}/orders"]
        assert fast.status_code == 202
        assert without_identity(fast) == without_identity(routed)
        assert fast.headers["location"] == f"/api/{version}/orders/{fast.json()['id']}"
    assert await graph.relays.settle()
    listing = (await client.get("/api/v1/orders", headers=alice)).json()
    assert listing["total"] == 4


async def test_an_order_that_is_not_the_plain_case_is_placed_or_refused_by_the_route(
    graph: Monolith, client: httpx.AsyncClient, slow: httpx.AsyncClient,
    auth_headers: AuthHeaders, solved: list[str],
) -> None:
    alice = await auth_headers(ALICE[0], "orders:read orders:write")
    read_only = await auth_headers(ALICE[0], "orders:read")
    beans = await stocked_product(graph, "FAST-4", on_hand=50)
    line = {"product_id": beans, "quantity": 1}
    json_headers = {**alice, "content-type": "application/json"}
    unusual: list[tuple[bytes, dict[str, str]]] = [
        (orjson.dumps({"lines": [{**line, "quantity": "2"}]}), json_headers),
        (orjson.dumps({"lines": [line], "status": "confirmed"}), json_headers),
        (orjson.dumps({"lines": []}), json_headers),
        (b'{"lines": [', json_headers),
        (b"", json_headers),
        (orjson.dumps({"lines": [line]}), {**read_only, "content-type": "application/json"}),
        (orjson.dumps({"lines": [line]}), {"content-type": "application/json"}),
        (orjson.dumps({"lines": [line]}),
         {"content-type": "application/json", "Authorization": "Bearer forged"}),
    ]
    solved.clear()
    for content, headers in unusual:
        fast = await client.post("/api/v1/orders", content=content, headers=headers)
        routed = await slow.post("/api/v1/orders", content=content, headers=headers)
        assert fast.status_code in (400, 401, 403, 422), fast.text
        assert comparable(fast) == comparable(routed), content
    assert solved == ["/api/v1/orders"] * 2 * len(unusual)

    # Another content type is not the plain case either; the route places the order.
    solved.clear()
    text = await client.post("/api/v1/orders", content=orjson.dumps({"lines": [line]}),
                             headers={**alice, "content-type": "application/json; charset=utf-8"})
    assert text.status_code == 202 and solved == ["/api/v1/orders"]


async def test_an_order_refused_by_the_service_is_answered_by_the_lane_as_by_the_route(
    client: httpx.AsyncClient, slow: httpx.AsyncClient, auth_headers: AuthHeaders,
    solved: list[str],
) -> None:
    alice = await auth_headers(ALICE[0], "orders:read orders:write")
    unknown = {"lines": [{"product_id": "0190a1b2-0000-7000-8000-000000000000", "quantity": 1}]}
    solved.clear()
    fast = await client.post("/api/v1/orders", headers=alice, json=unknown)
    assert solved == []  # refused after the lane ran the command: answered, not retried
    routed = await slow.post("/api/v1/orders", headers=alice, json=unknown)
    assert fast.status_code == 409
    assert fast.json()["errors"][0]["pointer"] == "/lines/0/product_id"
    assert comparable(fast) == comparable(routed)

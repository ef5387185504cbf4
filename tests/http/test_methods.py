"""RFC 9110 methods on every route: HEAD wherever GET is, and a 405 with the path's ``Allow``."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from tests.conftest import AuthHeaders
from tests.http.raw_asgi import raw_request

ALL_SCOPES = ("profile users:read users:write catalog:write orders:read orders:write "
              "reports:read")
PROBE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
# Headers that differ between any two requests, or (for /metrics) between two scrapes.
VOLATILE = {"x-request-id", "date"}
VOLATILE_BY_PATH = {"/metrics": {"content-length"}}


def concrete(path: str) -> str:
    """A route template with every parameter filled in (no such resource: a 404 is fine)."""
    return re.sub(r"\{[^}]+\}", "01a2441e-0000-7000-8000-000000000000", path)


def get_routes(app: Any) -> list[Route]:
    return [r for r in app.routes if "GET" in (getattr(r, "methods", None) or ())]


def methods_of(app: Any, path: str) -> set[str]:
    """Every method some route serves at ``path``, found independently of the app's answer."""
    served: set[str] = set()
    for route in app.routes:
        if getattr(route, "path_regex", None) is not None and route.path_regex.match(path):
            served |= set(getattr(route, "methods", None) or ())  # a websocket route has none
    return served


def comparable(response: httpx.Response, path: str) -> dict[str, str]:
    skip = VOLATILE | VOLATILE_BY_PATH.get(path, set())
    return {k: v for k, v in response.headers.items() if k not in skip}


async def test_every_get_route_answers_head_with_the_same_headers_and_no_body(
    app: Any, client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    routes = get_routes(app)
    assert len(routes) > 20
    for token in ({}, await auth_headers("admin@archway.test", ALL_SCOPES)):
        for route in routes:
            path = concrete(route.path)
            get = await client.get(path, headers=token)
            head = await client.head(path, headers=token)
            assert head.status_code == get.status_code, path
            assert head.content == b"", path
            assert comparable(head, path) == comparable(get, path), path
            if get.content and "content-length" not in VOLATILE_BY_PATH.get(path, set()):
                assert head.headers["content-length"] == str(len(get.content)), path


async def test_head_is_served_on_docs_openapi_and_operations(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc", "/openapi/v1.json", "/openapi/v2.json", "/healthz",
                 "/readyz", "/metrics", "/.well-known/jwks.json", "/docs/oauth2-redirect"):
        response = await client.head(path)
        assert response.status_code == 200, path
        assert response.content == b"", path


async def test_head_of_a_problem_keeps_its_status_and_headers(client: httpx.AsyncClient) -> None:
    response = await client.head("/api/v1/products/nope")
    assert response.status_code == 404 and response.content == b""
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["content-length"]) > 0
    assert response.headers["link"] == '</api/v2/products/nope>; rel="successor-version"'


async def test_head_sends_no_body_message_with_content(app: Any) -> None:
    answer = await raw_request(app, "HEAD", "/openapi/v1.json")
    assert answer.status == 200
    bodies = [m for m in answer.messages if m["type"] == "http.response.body"]
    assert bodies and all(m.get("body", b"") == b"" for m in bodies)
    assert not bodies[-1].get("more_body", False)


async def test_every_method_a_path_does_not_serve_is_405_with_the_paths_allow(
    app: Any, client: httpx.AsyncClient
) -> None:
    paths = {concrete(getattr(r, "path", "")) for r in app.routes if hasattr(r, "path")}
    checked = 0
    for path in sorted(paths):
        served = methods_of(app, path)
        expected = served | ({"HEAD"} if "GET" in served else set())
        for method in PROBE_METHODS:
            if method in expected:
                continue
            response = await client.request(method, path)
            assert response.status_code == 405, (method, path, response.status_code)
            assert response.headers["content-type"] == "application/problem+json"
            allow = {m.strip() for m in response.headers["allow"].split(",")}
            assert allow == expected, (method, path)
            checked += 1
    assert checked > 50


async def test_the_allow_of_a_product_lists_every_method_of_its_routes(
    client: httpx.AsyncClient,
) -> None:
    response = await client.put("/api/v1/products/abc")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH"
    assert response.json()["status"] == 405
    stock = await client.post("/api/v2/products/abc/stock")
    assert stock.headers["allow"] == "GET, HEAD, PUT"
    assert (await client.delete("/healthz")).headers["allow"] == "GET, HEAD"
    assert (await client.get("/api/v1/orders/x/cancel")).headers["allow"] == "POST"


async def test_head_where_no_get_is_is_405(client: httpx.AsyncClient) -> None:
    response = await client.head("/api/v1/orders/x/cancel")
    assert response.status_code == 405 and response.content == b""
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("method", ["FOO", "PROPFIND", "CONNECT", "M" * 200])
async def test_unknown_methods_are_refused_without_a_5xx(
    client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(method, "/api/v1/products")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, POST"


async def test_head_on_the_fast_lane_matches_get_for_real_resources(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, graph: Any
) -> None:
    admin = await auth_headers("admin@archway.test", "catalog:write")
    created = await client.post("/api/v2/products", headers=admin, json={
        "sku": "HEAD-1", "name": "Head", "category": "tea",
        "price": {"amount": 250, "currency": "EUR"}})
    assert created.status_code == 201
    product = created.json()["id"]
    await client.post("/api/v2/products", headers=admin, json={
        "sku": "HEAD-2", "name": "Head two", "category": "tea",
        "price": {"amount": 260, "currency": "EUR"}})
    alice = await auth_headers("alice@archway.test", "profile orders:read")
    cases = [
        (f"/api/v1/products/{product}", {}), (f"/api/v2/products/{product}", {}),
        ("/api/v2/products?limit=1", {}), ("/api/v1/products?limit=1&offset=1", {}),
        ("/api/v1/users/me", alice), ("/api/v2/orders?limit=5", alice),
    ]
    for path, headers in cases:
        get = await client.get(path, headers=headers)
        head = await client.head(path, headers=headers)
        assert get.status_code == head.status_code == 200, path
        assert head.content == b"" and comparable(head, path) == comparable(get, path), path
    etag = (await client.get(f"/api/v2/products/{product}")).headers["etag"]
    cached = await client.head(f"/api/v2/products/{product}", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    route = "/api/v2/products/{product_id}"
    labels = {"route": route, "method": "HEAD", "status": "200", "protocol": "http"}
    before = graph.metrics.registry.get_sample_value("archway_http_requests_total", labels) or 0
    await client.head(f"/api/v2/products/{product}")
    after = graph.metrics.registry.get_sample_value("archway_http_requests_total", labels)
    assert after == before + 1

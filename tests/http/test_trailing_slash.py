"""A path with a trailing slash is redirected to the path without it, by a relative
``Location``: never to a host the request named (Starlette's redirect trusts ``Host``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.http.raw_asgi import raw_request
from tests.ordering import stocked_product

FORGED_HOST = {"host": "evil.example"}


@pytest.mark.parametrize(("path", "location"), [
    ("/api/v1/products/", "/api/v1/products"),
    ("/api/v2/products/?limit=2&sort=-price", "/api/v2/products?limit=2&sort=-price"),
    ("/api/v2/users/me/", "/api/v2/users/me"),
    ("/api/v1/products/%E2%82%AC/", "/api/v1/products/%E2%82%AC"),
    ("/docs/", "/docs"),
])
async def test_a_trailing_slash_is_a_relative_permanent_redirect(
    client: httpx.AsyncClient, path: str, location: str
) -> None:
    for method in ("GET", "HEAD", "POST"):
        response = await client.request(method, path, headers=FORGED_HOST)
        assert response.status_code == 308, (method, response.text)
        assert response.headers["location"] == location
        assert "evil.example" not in response.headers["location"]
        assert response.headers["x-request-id"]  # the policies answered it like any other


@pytest.mark.parametrize("path", ["/no/such/", "//evil.example/", "/api/v1/products//"])
async def test_a_slash_with_nothing_behind_it_is_a_404_problem(app: Any, path: str) -> None:
    # Raw: an HTTP client would read "//evil.example/" as another host, as a browser would
    # read such a Location.
    response = await raw_request(app, "GET", path, headers=[(b"host", b"evil.example")])
    assert response.status == 404, response.body
    assert response.header(b"content-type") == [b"application/problem+json"]
    assert response.header(b"location") == []


async def test_following_the_redirect_with_the_same_idempotency_key_places_the_order(
    graph: Monolith, client: httpx.AsyncClient, auth_headers: AuthHeaders,
) -> None:
    alice = await auth_headers("alice@archway.test", "orders:read orders:write")
    product = await stocked_product(graph, "SLASH-1", on_hand=5)
    headers = {**alice, "Idempotency-Key": "slash-1"}
    body = {"lines": [{"product_id": product, "quantity": 1}]}
    redirected = await client.post("/api/v1/orders/", headers=headers, json=body)
    assert redirected.status_code == 308
    assert redirected.headers["location"] == "/api/v1/orders"
    placed = await client.post(redirected.headers["location"], headers=headers, json=body)
    assert placed.status_code == 202, placed.text  # the redirect kept nothing under the key
    replayed = await client.post("/api/v1/orders", headers=headers, json=body)
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.json()["id"] == placed.json()["id"]

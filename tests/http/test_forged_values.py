"""Values the API issues and takes back (pagination cursors, ``Consistency-Token``): anything
the API did not issue is refused at once with a 4xx naming the parameter or header, never a
5xx, and never a wait."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from archway.orders.consistency import encode_token
from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.http.test_orders_api import ALICE, Headers, place
from tests.ordering import stocked_product

ADMIN = "admin@archway.test"
AN_ID = "0190b1f6-7c3e-7a4b-9d2e-1f2a3b4c5d6e"


def forge(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).rstrip(b"=").decode()


def raw(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


MALFORMED = [
    pytest.param("!!!!", id="not-base64"),
    pytest.param("a", id="truncated-base64"),
    pytest.param(raw(b"\xff\xfe\xfd"), id="not-utf8"),
    pytest.param(raw(b"[1,"), id="not-json"),
    pytest.param(raw(b'{"a": 1}'), id="an-object"),
    pytest.param(forge(), id="empty-list"),
    pytest.param(forge(1, 2, 3, 4), id="too-many-values"),
    pytest.param(forge(None), id="null"),
    pytest.param(forge(1.5, AN_ID), id="a-float"),
    pytest.param(forge(True, AN_ID), id="a-boolean"),
    pytest.param(forge([1], AN_ID), id="a-list"),
]

PRODUCT_FORGERIES = [
    pytest.param("price", forge(10**30, AN_ID), id="price-past-64-bits"),
    pytest.param("price", forge(2**63, AN_ID), id="price-just-past-bigint"),
    pytest.param("price", forge(-(2**63) - 1, AN_ID), id="price-below-bigint"),
    pytest.param("-price", forge(10**20, AN_ID), id="desc-price-past-64-bits"),
    pytest.param("price", forge("1999", AN_ID), id="price-as-text"),
    pytest.param("price", forge(1999, 7), id="id-as-number"),
    pytest.param("price", forge(1999, "a\x00b"), id="id-with-nul"),
    pytest.param("price", forge(1999, "x" * 300), id="id-too-long"),
    pytest.param("name", forge("a\x00b", AN_ID), id="name-with-nul"),
    pytest.param("name", forge(12, AN_ID), id="name-as-number"),
    pytest.param("created_at", forge("9999-12-31T23:59:59-14:00", AN_ID), id="date-past-9999"),
    pytest.param("created_at", forge("0001-01-01T00:00:00+14:00", AN_ID), id="date-before-1"),
    pytest.param("created_at", forge("2024-13-45T00:00:00+00:00", AN_ID), id="no-such-date"),
    pytest.param("created_at", forge("yesterday", AN_ID), id="not-a-date"),
    pytest.param("created_at", forge(1700000000, AN_ID), id="date-as-number"),
    pytest.param("created_at", forge("2024-01-01T00:00:00+00:00\x00", AN_ID), id="date-nul"),
]


def assert_refused(response: httpx.Response, name: str = "cursor") -> None:
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    named = [error["pointer"] for error in body.get("errors", [])]
    assert name in named or name in body["detail"], body


@pytest.mark.parametrize("cursor", MALFORMED)
@pytest.mark.parametrize("sort", ["price", "name", "created_at"])
async def test_a_malformed_product_cursor_is_refused(
    client: httpx.AsyncClient, sort: str, cursor: str
) -> None:
    response = await client.get("/api/v2/products", params={"sort": sort, "cursor": cursor})
    assert_refused(response)


@pytest.mark.parametrize(("sort", "cursor"), PRODUCT_FORGERIES)
async def test_a_forged_product_cursor_is_refused(
    graph: Monolith, client: httpx.AsyncClient, sort: str, cursor: str
) -> None:
    await stocked_product(graph, "CUR-1", on_hand=0)
    response = await client.get("/api/v2/products", params={"sort": sort, "cursor": cursor})
    assert_refused(response)


ID_FORGERIES = [
    *MALFORMED,
    pytest.param(forge(7), id="id-as-number"),
    pytest.param(forge(10**30), id="huge-number"),
    pytest.param(forge("a\x00b"), id="id-with-nul"),
    pytest.param(forge("x" * 300), id="id-too-long"),
    pytest.param(forge(AN_ID, AN_ID), id="two-values"),
]


@pytest.mark.parametrize("cursor", ID_FORGERIES)
async def test_a_forged_user_cursor_is_refused(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, cursor: str
) -> None:
    headers = await auth_headers(ADMIN, "users:read")
    response = await client.get("/api/v2/users", params={"cursor": cursor}, headers=headers)
    assert_refused(response)


@pytest.mark.parametrize("cursor", ID_FORGERIES)
async def test_a_forged_order_cursor_is_refused(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, cursor: str
) -> None:
    headers = await auth_headers(ALICE, "orders:read")
    response = await client.get("/api/v2/orders", params={"cursor": cursor}, headers=headers)
    assert_refused(response)


async def test_the_cursors_the_api_issues_are_still_taken_back(
    graph: Monolith, client: httpx.AsyncClient
) -> None:
    for n in range(3):
        await stocked_product(graph, f"PAGE-{n}", on_hand=0, price=100 + n)
    for sort in ("price", "-price", "name", "created_at"):
        first = await client.get("/api/v2/products", params={"sort": sort, "limit": 2})
        cursor = first.json()["next_cursor"]
        second = await client.get("/api/v2/products",
                                  params={"sort": sort, "limit": 2, "cursor": cursor})
        assert second.status_code == 200, second.text
        assert len(second.json()["data"]) == 1


# -- Consistency-Token ------------------------------------------------------------------------


@pytest.fixture
async def alice(auth_headers: AuthHeaders) -> Headers:
    return await auth_headers(ALICE, "orders:read orders:write reports:read")


@pytest.mark.parametrize("token", [
    pytest.param(encode_token(10**12), id="far-beyond-the-newest-event"),
    pytest.param(encode_token(10**17 * 9), id="past-64-bits"),
    pytest.param("garbage!", id="not-base64"),
    pytest.param(raw(b"orders:-1"), id="negative"),
    pytest.param(raw(b"orders:1.5"), id="not-an-integer"),
    pytest.param(raw(b"catalog:1"), id="another-prefix"),
    pytest.param("x" * 65, id="too-long"),
])
async def test_a_forged_consistency_token_is_refused_at_once(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, accounts: dict[str, str],
    token: str,
) -> None:
    """Formerly a token past the newest event made every query wait out the whole bound."""
    product = await stocked_product(graph, "TOK-1", on_hand=5)
    order = await place(client, alice, product)
    paths = ["/api/v2/orders", f"/api/v2/orders/{order['id']}",
             f"/api/v2/reports/customers/{accounts[ALICE]}"]
    for path in paths:
        # Waiting it out would answer 200 with `Consistency: stale`; a refusal cannot wait.
        response = await client.get(path, headers={**alice, "Consistency-Token": token})
        assert response.status_code == 400, response.text
        assert "Consistency-Token" in response.json()["detail"]


async def test_the_newest_issued_token_is_still_honoured(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, accounts: dict[str, str],
) -> None:
    product = await stocked_product(graph, "TOK-2", on_hand=5)
    placed = await client.post("/api/v2/orders", headers=alice, json={
        "lines": [{"product_id": product, "quantity": 1}]})
    token = placed.headers["Consistency-Token"]
    response = await client.get(f"/api/v2/orders/{placed.json()['id']}",
                                headers={**alice, "Consistency-Token": token})
    assert response.status_code == 200, response.text
    assert "consistency" not in response.headers

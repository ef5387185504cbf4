"""Orders over REST: every route, both API versions, and every refusal."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.ordering import eventually, stocked_product

ADMIN, ALICE, BOB = "admin@archway.test", "alice@archway.test", "bob@archway.test"
Headers = dict[str, str]


@pytest.fixture
async def alice(auth_headers: AuthHeaders) -> Headers:
    return await auth_headers(ALICE, "orders:read orders:write")


@pytest.fixture
async def bob(auth_headers: AuthHeaders) -> Headers:
    return await auth_headers(BOB, "orders:read orders:write")


@pytest.fixture
async def admin(auth_headers: AuthHeaders) -> Headers:
    return await auth_headers(ADMIN, "orders:read orders:write")


@pytest.fixture
async def coffee(graph: Monolith, accounts: dict[str, str]) -> str:
    return await stocked_product(graph, "COF-1", on_hand=10, price=1999)


async def place(
    client: httpx.AsyncClient, headers: Headers, product_id: str, quantity: int = 1,
    version: int = 1,
) -> dict[str, Any]:
    response = await client.post(f"/api/v{version}/orders", headers=headers, json={
        "lines": [{"product_id": product_id, "quantity": quantity}]})
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


async def settled(
    client: httpx.AsyncClient, headers: Headers, order_id: str, version: int = 1,
    *, status: str | None = None,
) -> dict[str, Any]:
    """The order as the read model shows it once the saga has answered (or once it shows
    ``status``: the read model trails a cancel too)."""
    async def read() -> httpx.Response:
        return await client.get(f"/api/v{version}/orders/{order_id}", headers=headers)

    def done(response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        shown = response.json()["status"]
        return shown == status if status else shown != "pending"

    return (await eventually(read, done)).json()  # type: ignore[no-any-return]


def pointers(response: httpx.Response, status: int = 422) -> list[str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [error["pointer"] for error in response.json()["errors"]]


# -- place ---------------------------------------------------------------------------------


async def test_v1_place_answers_202_with_location_and_the_pending_priced_order(
    client: httpx.AsyncClient, alice: Headers, coffee: str, accounts: dict[str, str]
) -> None:
    response = await client.post("/api/v1/orders", headers=alice, json={
        "lines": [{"product_id": coffee, "quantity": 3}]})
    assert response.status_code == 202
    body = response.json()
    assert response.headers["location"] == f"/api/v1/orders/{body['id']}"
    assert (body["status"], body["customer_id"]) == ("pending", accounts[ALICE])
    assert (body["total"], body["currency"]) == ("59.97", "EUR")
    assert body["lines"] == [{
        "product_id": coffee, "sku": "COF-1", "name": "Product COF-1", "quantity": 3,
        "unit_price": "19.99", "line_total": "59.97", "currency": "EUR"}]
    assert body["rejection_reason"] is None
    assert body["placed_at"].endswith("Z")


async def test_v2_shows_money_as_minor_units(
    client: httpx.AsyncClient, alice: Headers, coffee: str
) -> None:
    body = await place(client, alice, coffee, 2, version=2)
    assert body["total"] == {"amount": 3998, "currency": "EUR"}
    assert body["lines"][0]["unit_price"] == {"amount": 1999, "currency": "EUR"}
    assert (await settled(client, alice, body["id"], 2))["total"] == body["total"]


@pytest.mark.parametrize(("body", "expected"), [
    ({"lines": []}, ["/lines"]),
    ({"lines": [{"product_id": "x", "quantity": 1}] * 51}, ["/lines"]),
    ({"lines": [{"product_id": "P", "quantity": 0}]}, ["/lines/0/quantity"]),
    ({"lines": [{"product_id": "P", "quantity": 1001}]}, ["/lines/0/quantity"]),
    ({"lines": [{"product_id": "P", "quantity": "2"}]}, ["/lines/0/quantity"]),
    ({"lines": [{"product_id": "P", "quantity": 1, "price": "0.01"}]}, ["/lines/0/price"]),
    ({"lines": [{"product_id": "P", "quantity": 1}], "status": "confirmed"}, ["/status"]),
    ({}, ["/lines"]),
])
async def test_malformed_orders_are_422_with_pointers(
    client: httpx.AsyncClient, alice: Headers, coffee: str, body: dict[str, Any],
    expected: list[str],
) -> None:
    text = json.dumps(body).replace('"P"', json.dumps(coffee))
    response = await client.post(
        "/api/v1/orders", headers={**alice, "content-type": "application/json"}, content=text)
    assert pointers(response) == expected


async def test_a_repeated_line_with_unknown_products_is_422_on_every_line(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, coffee: str
) -> None:
    off_sale = await stocked_product(graph, "OFF-1", on_hand=5, active=False)
    unknown = "01900000-0000-7000-8000-000000000000"
    response = await client.post("/api/v1/orders", headers=alice, json={"lines": [
        {"product_id": unknown, "quantity": 1}, {"product_id": off_sale, "quantity": 1},
        {"product_id": coffee, "quantity": 1}, {"product_id": coffee, "quantity": 1}]})
    # the repeated line is not well-formed: every refused line is reported at once (422)
    assert pointers(response) == [
        "/lines/0/product_id", "/lines/1/product_id", "/lines/3/product_id"]
    assert (await client.get("/api/v1/orders", headers=alice)).json()["total"] == 0


async def test_products_not_on_sale_alone_are_a_409_on_their_lines(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, coffee: str
) -> None:
    """Whether a product is on sale is the catalog's state, which no schema states: a
    well-formed order of products not on sale conflicts with that state (it may succeed
    later), it is not invalid input."""
    off_sale = await stocked_product(graph, "OFF-2", on_hand=5, active=False)
    unknown = "01900000-0000-7000-8000-000000000000"
    for version in ("v1", "v2"):
        response = await client.post(f"/api/{version}/orders", headers=alice, json={"lines": [
            {"product_id": coffee, "quantity": 1}, {"product_id": unknown, "quantity": 1},
            {"product_id": off_sale, "quantity": 1}, {"product_id": "", "quantity": 1}]})
        assert response.json()["type"].endswith("/problems/unavailable")
        assert pointers(response, 409) == [
            "/lines/1/product_id", "/lines/2/product_id", "/lines/3/product_id"]
    assert (await client.get("/api/v1/orders", headers=alice)).json()["total"] == 0


async def test_placing_needs_a_token_with_orders_write(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, coffee: str
) -> None:
    body = {"lines": [{"product_id": coffee, "quantity": 1}]}
    assert (await client.post("/api/v1/orders", json=body)).status_code == 401
    reader = await auth_headers(ALICE, "orders:read")
    response = await client.post("/api/v1/orders", json=body, headers=reader)
    assert response.status_code == 403
    assert 'scope="orders:write"' in response.headers["www-authenticate"]


# -- read ----------------------------------------------------------------------------------


async def test_an_order_is_read_from_the_read_model_by_its_owner_and_admins_only(
    client: httpx.AsyncClient, alice: Headers, bob: Headers, admin: Headers, coffee: str
) -> None:
    order = await place(client, alice, coffee)
    shown = await settled(client, alice, order["id"])
    assert shown["status"] == "confirmed"
    assert {k: shown[k] for k in ("id", "lines", "total")} == {
        k: order[k] for k in ("id", "lines", "total")}
    assert (await client.get(f"/api/v1/orders/{order['id']}", headers=admin)).status_code == 200
    for path in (f"/api/v1/orders/{order['id']}", "/api/v1/orders/nope",
                 "/api/v1/orders/01900000-0000-7000-8000-000000000000"):
        response = await client.get(path, headers=bob)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


async def test_reading_needs_orders_read(
    client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    assert (await client.get("/api/v1/orders")).status_code == 401
    writer = await auth_headers(ALICE, "orders:write")
    assert (await client.get("/api/v1/orders", headers=writer)).status_code == 403


async def test_v1_lists_own_orders_in_offset_pages_and_admins_see_all(
    client: httpx.AsyncClient, alice: Headers, bob: Headers, admin: Headers, coffee: str
) -> None:
    mine = [await place(client, alice, coffee) for _ in range(3)]
    theirs = await place(client, bob, coffee)
    for order in [*mine, theirs]:
        await settled(client, admin, order["id"])
    page = (await client.get("/api/v1/orders?limit=2", headers=alice)).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    assert [o["id"] for o in page["items"]] == [mine[2]["id"], mine[1]["id"]]  # newest first
    everyone = (await client.get("/api/v1/orders", headers=admin)).json()
    assert everyone["total"] == 4


async def test_v2_lists_in_cursor_pages_with_a_next_link(
    client: httpx.AsyncClient, alice: Headers, coffee: str
) -> None:
    orders = [await place(client, alice, coffee) for _ in range(3)]
    for order in orders:
        await settled(client, alice, order["id"])
    first = await client.get("/api/v2/orders?limit=2", headers=alice)
    assert [o["id"] for o in first.json()["data"]] == [orders[2]["id"], orders[1]["id"]]
    cursor = first.json()["next_cursor"]
    assert first.headers["link"] == f'</api/v2/orders?limit=2&cursor={cursor}>; rel="next"'
    last = await client.get(f"/api/v2/orders?limit=2&cursor={cursor}", headers=alice)
    assert [o["id"] for o in last.json()["data"]] == [orders[0]["id"]]
    assert last.json()["next_cursor"] is None and "link" not in last.headers
    bad = await client.get("/api/v2/orders?cursor=garbage", headers=alice)
    assert pointers(bad) == ["cursor"]


async def test_the_read_model_shows_what_the_command_answered_in_both_versions(
    client: httpx.AsyncClient, alice: Headers, coffee: str
) -> None:
    for version in (1, 2):
        order = await place(client, alice, coffee, 2, version=version)
        shown = await settled(client, alice, order["id"], version)
        assert shown == {**order, "status": "confirmed", "updated_at": shown["updated_at"]}
        assert shown["updated_at"] >= order["placed_at"] == shown["placed_at"]
        listed = (await client.get(f"/api/v{version}/orders?limit=1", headers=alice)).json()
        assert listed["items" if version == 1 else "data"] == [shown]


async def test_pages_past_the_end_still_count_and_admins_page_by_cursor(
    client: httpx.AsyncClient, alice: Headers, bob: Headers, admin: Headers, coffee: str
) -> None:
    orders = [await place(client, who, coffee) for who in (alice, bob, alice)]
    for order in orders:
        await settled(client, admin, order["id"])
    past = (await client.get("/api/v1/orders?offset=5", headers=alice)).json()
    assert (past["items"], past["total"], past["offset"]) == ([], 2, 5)
    last = (await client.get("/api/v1/orders?offset=1", headers=alice)).json()
    assert ([o["id"] for o in last["items"]], last["total"]) == ([orders[0]["id"]], 2)
    seen, path = [], "/api/v2/orders?limit=2"
    while path:
        response = await client.get(path, headers=admin)
        seen += [o["id"] for o in response.json()["data"]]
        path = response.links.get("next", {}).get("url", "")
    assert seen == [order["id"] for order in reversed(orders)]


# -- cancel --------------------------------------------------------------------------------


async def test_the_owner_cancels_and_others_get_404(
    client: httpx.AsyncClient, alice: Headers, bob: Headers, coffee: str
) -> None:
    order = await place(client, alice, coffee)
    path = f"/api/v1/orders/{order['id']}/cancel"
    assert (await client.post(path, headers=bob)).status_code == 404
    response = await client.post(path, headers=alice)
    assert response.status_code == 202
    assert response.json()["status"] == "cancelled"
    assert (await client.post(path, headers=alice)).status_code == 202  # again: no change
    assert (await settled(client, alice, order["id"], status="cancelled"))["id"] == order["id"]


async def test_an_admin_may_cancel_anyones_order(
    client: httpx.AsyncClient, alice: Headers, admin: Headers, coffee: str
) -> None:
    order = await place(client, alice, coffee)
    await settled(client, alice, order["id"])
    response = await client.post(f"/api/v2/orders/{order['id']}/cancel", headers=admin)
    assert (response.status_code, response.json()["status"]) == (202, "cancelled")


async def test_a_rejected_order_cannot_be_cancelled(
    client: httpx.AsyncClient, alice: Headers, coffee: str
) -> None:
    order = await place(client, alice, coffee, quantity=11)  # 10 on hand
    assert (await settled(client, alice, order["id"]))["status"] == "rejected"
    response = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=alice)
    assert response.status_code == 409
    unknown = await client.post("/api/v1/orders/nope/cancel", headers=alice)
    assert unknown.status_code == 404

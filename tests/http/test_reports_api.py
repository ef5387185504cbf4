"""Reports over REST (both versions, every refusal) and read-your-writes on every query."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Connection

from archway.kernel.ids import new_id
from archway.orders.consistency import encode_token
from archway.orders.store import orders_outbox
from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.http.test_orders_api import ADMIN, ALICE, BOB, place, settled
from tests.ordering import stocked_product

Headers = dict[str, str]
TOKEN = "Consistency-Token"


@pytest.fixture
async def alice(auth_headers: AuthHeaders) -> Headers:
    return await auth_headers(ALICE, "orders:read orders:write")


@pytest.fixture
async def bob(auth_headers: AuthHeaders) -> Headers:
    return await auth_headers(BOB, "orders:read orders:write")


@pytest.fixture
async def admin(auth_headers: AuthHeaders) -> Headers:
    return await auth_headers(ADMIN, "orders:read orders:write reports:read")


async def sales_scenario(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> dict[str, str]:
    """Confirmed, rejected and cancelled orders; returns the product ids by name."""
    coffee = await stocked_product(graph, "COF-R", on_hand=10, price=1999)
    tea = await stocked_product(graph, "TEA-R", on_hand=10, price=500)
    rare = await stocked_product(graph, "RARE-R", on_hand=1, price=9900)
    confirmed = [await place(client, alice, coffee, 2), await place(client, bob, tea, 3),
                 await place(client, bob, coffee, 1)]
    rejected = await place(client, bob, rare, 5)
    cancelled = await place(client, alice, tea, 4)
    for headers, order in zip((alice, bob, bob), confirmed, strict=True):
        assert (await settled(client, headers, order["id"]))["status"] == "confirmed"
    assert (await settled(client, bob, rejected["id"]))["status"] == "rejected"
    assert (await settled(client, alice, cancelled["id"]))["status"] == "confirmed"
    response = await client.post(f"/api/v1/orders/{cancelled['id']}/cancel", headers=alice)
    assert response.status_code == 202
    await settled(client, alice, cancelled["id"], status="cancelled")
    await graph.relays.settle()
    return {"coffee": coffee, "tea": tea, "rare": rare}


async def test_top_products_count_confirmed_orders_in_both_versions(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, bob: Headers, admin: Headers,
) -> None:
    ids = await sales_scenario(graph, client, alice, bob)
    v1 = await client.get("/api/v1/reports/top-products", headers=admin)
    assert v1.status_code == 200, v1.text
    assert v1.json() == {"items": [
        {"product_id": ids["coffee"], "units_sold": 3, "revenue": "59.97", "currency": "EUR"},
        {"product_id": ids["tea"], "units_sold": 3, "revenue": "15.00", "currency": "EUR"},
    ]}  # the rejected order and the cancelled one do not count
    v2 = await client.get("/api/v2/reports/top-products?limit=1", headers=admin)
    assert v2.json() == {"data": [
        {"product_id": ids["coffee"], "units_sold": 3,
         "revenue": {"amount": 5997, "currency": "EUR"}}]}


async def test_a_customer_reads_their_summary_and_an_admin_reads_anyones(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, bob: Headers, admin: Headers,
    accounts: dict[str, str],
) -> None:
    await sales_scenario(graph, client, alice, bob)
    mine = await client.get(f"/api/v1/reports/customers/{accounts[ALICE]}", headers=alice)
    assert mine.status_code == 200, mine.text
    assert mine.json() == {"customer_id": accounts[ALICE], "orders_count": 1,
                           "total_spent": "39.98", "currency": "EUR"}
    bobs = await client.get(f"/api/v2/reports/customers/{accounts[BOB]}", headers=admin)
    assert bobs.json() == {"customer_id": accounts[BOB], "orders_count": 2,
                           "total_spent": {"amount": 3499, "currency": "EUR"}}


async def test_a_customer_without_orders_has_zeros(
    client: httpx.AsyncClient, alice: Headers, accounts: dict[str, str]
) -> None:
    response = await client.get(f"/api/v2/reports/customers/{accounts[ALICE]}", headers=alice)
    assert response.json() == {"customer_id": accounts[ALICE], "orders_count": 0,
                               "total_spent": {"amount": 0, "currency": "EUR"}}


@pytest.mark.parametrize("path", ["/api/v1/reports/top-products",
                                  "/api/v1/reports/customers/{alice}"])
async def test_reports_need_a_token(
    client: httpx.AsyncClient, accounts: dict[str, str], path: str
) -> None:
    response = await client.get(path.format(alice=accounts[ALICE]))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_top_products_need_reports_read(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    response = await client.get("/api/v1/reports/top-products", headers=alice)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_customer_cannot_read_another_customers_summary(
    client: httpx.AsyncClient, alice: Headers, auth_headers: AuthHeaders,
    accounts: dict[str, str],
) -> None:
    assert (await client.get(
        f"/api/v1/reports/customers/{accounts[BOB]}", headers=alice)).status_code == 403
    profile_only = await auth_headers(ALICE, "profile")
    assert (await client.get(
        f"/api/v1/reports/customers/{accounts[ALICE]}", headers=profile_only)).status_code == 403


async def test_a_summary_of_something_that_is_no_id_is_404(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    response = await client.get("/api/v1/reports/customers/nobody", headers=admin)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
async def test_top_products_limit_is_1_to_100(
    client: httpx.AsyncClient, admin: Headers, limit: str
) -> None:
    response = await client.get(f"/api/v2/reports/top-products?limit={limit}", headers=admin)
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["limit"]


# -- read-your-writes ----------------------------------------------------------------------


async def test_a_query_with_the_commands_token_sees_the_command(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, accounts: dict[str, str],
) -> None:
    coffee = await stocked_product(graph, "COF-T", on_hand=5)
    placed = await client.post("/api/v2/orders", headers=alice, json={
        "lines": [{"product_id": coffee, "quantity": 1}]})
    token = placed.headers[TOKEN]
    order_id = placed.json()["id"]
    shown = await client.get(f"/api/v2/orders/{order_id}", headers={**alice, TOKEN: token})
    assert shown.status_code == 200
    assert "consistency" not in shown.headers
    listed = await client.get("/api/v1/orders", headers={**alice, TOKEN: token})
    assert [o["id"] for o in listed.json()["items"]] == [order_id]
    await settled(client, alice, order_id, status="confirmed")
    cancelled = await client.post(f"/api/v1/orders/{order_id}/cancel", headers=alice)
    token = cancelled.headers[TOKEN]
    fresh = {**alice, TOKEN: token}
    assert (await client.get(f"/api/v1/orders/{order_id}", headers=fresh)).json()[
        "status"] == "cancelled"
    summary = await client.get(f"/api/v1/reports/customers/{accounts[ALICE]}", headers=fresh)
    assert summary.json()["orders_count"] == 0  # confirmed, then taken back out


async def test_a_cancel_that_changes_nothing_still_answers_with_a_token(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, accounts: dict[str, str],
) -> None:
    coffee = await stocked_product(graph, "COF-U", on_hand=5)
    order = await place(client, alice, coffee, 2)
    await settled(client, alice, order["id"])
    # Cancelling a cancelled order changes nothing, and answers with the same token.
    token = (await client.post(
        f"/api/v1/orders/{order['id']}/cancel", headers=alice)).headers[TOKEN]
    again = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=alice)
    assert again.headers[TOKEN] == token


async def test_a_token_this_api_did_not_issue_is_400(
    client: httpx.AsyncClient, alice: Headers
) -> None:
    for bogus in ("not a token", "b3JkZXJzOng", "x" * 65, encode_token(1) + "!"):
        response = await client.get("/api/v1/orders", headers={**alice, TOKEN: bogus})
        assert response.status_code == 400, bogus
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_token_the_read_models_never_reach_answers_stale_in_time(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, accounts: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(graph.read_your_writes, "timeout", 0.2)
    # An event in the log that no read model will ever apply: marked published, never relayed.
    def log_unrelayed_event(conn: Connection) -> int:
        now = datetime.now(UTC)
        inserted = conn.execute(insert(orders_outbox).values(
            event_id=new_id(), event_type="archway.test.never_relayed.v1", subject=new_id(),
            payload="{}", created_at=now, published_at=now, attempts=0))
        return int(inserted.inserted_primary_key[0])

    position = await graph.db.write(log_unrelayed_event)
    future = {**alice, TOKEN: encode_token(position)}
    for path in ("/api/v1/orders", f"/api/v2/reports/customers/{accounts[ALICE]}"):
        response = await client.get(path, headers=future)
        assert response.status_code == 200
        assert response.headers["consistency"] == "stale"


async def test_the_token_is_replayed_with_an_idempotent_command(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers
) -> None:
    coffee = await stocked_product(graph, "COF-I", on_hand=5)
    headers = {**alice, "Idempotency-Key": "reports-token-1"}
    body = {"lines": [{"product_id": coffee, "quantity": 1}]}
    first = await client.post("/api/v1/orders", headers=headers, json=body)
    again = await client.post("/api/v1/orders", headers=headers, json=body)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers[TOKEN] == first.headers[TOKEN]

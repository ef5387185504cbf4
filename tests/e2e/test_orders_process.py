"""End to end: the order saga in the real monolith process, over HTTP, with CLI tokens.

The server's relays run in the background of ``archway serve monolith``; the tests only see
what a client sees, so every outcome is awaited by polling with a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningServer

DEADLINE = 10.0


@pytest.fixture(scope="module")
def shop(server: RunningServer) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """(Alice the customer, the admin) as HTTP clients; both tokens come from the CLI."""
    with ThreadPoolExecutor(2) as pool:  # one CLI process each, at the same time
        customer, admin = pool.map(lambda args: server.cli("token", *args).strip(), [
            ("--user", "alice@archway.test", "--scope", "orders:read orders:write"),
            ("--user", "admin@archway.test", "--scope", "catalog:write"),
        ])
    with (
        httpx.Client(base_url=server.base_url, timeout=10,
                     headers={"Authorization": f"Bearer {customer}"}) as alice,
        httpx.Client(base_url=server.base_url, timeout=10,
                     headers={"Authorization": f"Bearer {admin}"}) as admin_client,
    ):
        yield alice, admin_client


def product_with_stock(admin: httpx.Client, on_hand: int) -> str:
    created = admin.post("/api/v2/products", json={
        "sku": f"E2E-ORD-{time.time_ns()}", "name": "E2E grinder", "description": "",
        "category": "kitchen", "price": {"amount": 4500, "currency": "EUR"}})
    assert created.status_code == 201, created.text
    counted = admin.put(f"{created.headers['location']}/stock", json={"on_hand": on_hand})
    assert counted.status_code == 200, counted.text
    return str(created.json()["id"])


def stock(admin: httpx.Client, product_id: str) -> tuple[int, int]:
    level = admin.get(f"/api/v1/products/{product_id}/stock")
    assert level.status_code == 200, level.text
    return level.json()["on_hand"], level.json()["reserved"]


def poll(probe: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    """``probe()`` until ``done`` holds, at most :data:`DEADLINE` seconds."""
    deadline = time.monotonic() + DEADLINE
    while True:
        value = probe()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"still not done after {DEADLINE}s: {value!r}"
        time.sleep(0.05)


def order_once(alice: httpx.Client, order_id: str, status: str) -> dict[str, Any]:
    def shown() -> httpx.Response:
        return alice.get(f"/api/v1/orders/{order_id}")

    def done(response: httpx.Response) -> bool:
        # Until the read model has the order it answers 404; then pending, then the outcome.
        return response.status_code == 200 and response.json()["status"] == status

    return poll(shown, done).json()  # type: ignore[no-any-return]


def place(alice: httpx.Client, product_id: str, quantity: int) -> dict[str, Any]:
    placed = alice.post("/api/v1/orders", json={
        "lines": [{"product_id": product_id, "quantity": quantity}]})
    assert placed.status_code == 202, placed.text
    assert placed.headers["location"] == f"/api/v1/orders/{placed.json()['id']}"
    assert placed.json()["status"] == "pending"
    return placed.json()  # type: ignore[no-any-return]


def test_an_order_is_confirmed_then_cancelled_and_its_stock_released(
    shop: tuple[httpx.Client, httpx.Client],
) -> None:
    alice, admin = shop
    grinder = product_with_stock(admin, on_hand=5)
    assert stock(admin, grinder) == (5, 0)

    order = place(alice, grinder, 2)
    confirmed = order_once(alice, order["id"], "confirmed")
    assert confirmed["rejection_reason"] is None
    assert confirmed["lines"][0]["quantity"] == 2
    assert stock(admin, grinder) == (5, 2)

    cancelled = alice.post(f"/api/v1/orders/{order['id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    order_once(alice, order["id"], "cancelled")
    assert poll(lambda: stock(admin, grinder), lambda level: level == (5, 0)) == (5, 0)
    listed = alice.get("/api/v1/orders", params={"limit": 100}).json()["items"]
    assert [o["status"] for o in listed if o["id"] == order["id"]] == ["cancelled"]


def test_an_order_for_more_than_the_stock_is_rejected_with_a_reason(
    shop: tuple[httpx.Client, httpx.Client],
) -> None:
    alice, admin = shop
    grinder = product_with_stock(admin, on_hand=3)

    order = place(alice, grinder, 4)
    rejected = order_once(alice, order["id"], "rejected")
    assert rejected["rejection_reason"]
    assert stock(admin, grinder) == (3, 0)  # nothing held
    refused = alice.post(f"/api/v1/orders/{order['id']}/cancel")
    assert refused.status_code == 409

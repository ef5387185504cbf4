"""States rendered once: ``(id, version)`` names a state, so its JSON is reused (orders here)."""

from __future__ import annotations

import orjson

from archway.kernel.http.responses import RenderedStates
from archway.kernel.http.versioning import ApiVersion
from archway.orders.queries import OrderView
from archway.orders.rest import order_body

LINES = orjson.dumps([{"product_id": "p", "sku": "S-1", "name": "Beans", "quantity": 2,
                       "unit_price": 1250}])


def orders(version: ApiVersion, max_entries: int = 100) -> RenderedStates[OrderView]:
    return RenderedStates(lambda order: order_body(version, order),
                          lambda order: (order.id, order.version), max_entries=max_entries)


def view(order_id: str = "o-1", version: int = 1, status: str = "pending") -> OrderView:
    return OrderView(order_id, "c-1", status, "EUR", 2500, LINES, None,
                     "2026-11-25T10:00:00.5Z", "2026-11-25T10:00:00.5Z", version)


def test_a_state_is_rendered_once_and_reads_back_as_its_body() -> None:
    rendered = orders(ApiVersion.V1)
    first = rendered(view())
    assert rendered(view()) is first
    assert orjson.loads(orjson.dumps({"items": [first]}))["items"] == [
        order_body(ApiVersion.V1, view())]
    assert orjson.loads(orjson.dumps(first))["lines"][0]["line_total"] == "25.00"


def test_a_new_version_is_rendered_anew() -> None:
    rendered = orders(ApiVersion.V2)
    pending = rendered(view(version=1))
    confirmed = rendered(view(version=2, status="confirmed"))
    assert confirmed is not pending
    assert orjson.loads(orjson.dumps(confirmed))["status"] == "confirmed"
    assert orjson.loads(orjson.dumps(confirmed))["total"] == {"amount": 2500, "currency": "EUR"}


def test_the_memory_is_bounded_least_recently_used_first_out() -> None:
    rendered = orders(ApiVersion.V1, max_entries=2)
    a, b = rendered(view("a")), rendered(view("b"))
    assert rendered(view("a")) is a  # a is now the most recent
    rendered(view("c"))  # b goes
    assert rendered(view("a")) is a
    assert rendered(view("b")) is not b

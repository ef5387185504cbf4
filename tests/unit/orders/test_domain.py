"""The Order aggregate: pricing, line rules, and the status machine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from archway.kernel.errors import Conflict, FieldPath, InvalidInput, Unavailable
from archway.kernel.money import Money
from archway.orders.domain import (
    LineRequest,
    Order,
    OrderCancelled,
    OrderConfirmed,
    OrderPlaced,
    OrderRejected,
    OrderStatus,
    Quote,
    place,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
A = "01900000-0000-7000-8000-00000000000a"
B = "01900000-0000-7000-8000-00000000000b"
QUOTES = {
    A: Quote(A, "A-1", "Alpha", Money(1999, "EUR"), active=True),
    B: Quote(B, "B-1", "Beta", Money(250, "EUR"), active=True),
}


def placed(*lines: LineRequest) -> Order:
    return place("order-1", "alice", lines or (LineRequest(A, 2),), QUOTES, NOW)


def paths(
    exc: pytest.ExceptionInfo[InvalidInput] | pytest.ExceptionInfo[Unavailable],
) -> list[FieldPath]:
    return [error.path for error in exc.value.errors]


def test_a_placed_order_is_pending_priced_from_the_quotes_and_records_it() -> None:
    order = placed(LineRequest(A, 2), LineRequest(B, 3))
    assert order.status is OrderStatus.PENDING
    assert [line.unit_price for line in order.lines] == [Money(1999, "EUR"), Money(250, "EUR")]
    assert order.total == Money(2 * 1999 + 3 * 250, "EUR")
    assert (order.version, order.events) == (1, [OrderPlaced("order-1")])


@pytest.mark.parametrize(("lines", "expected"), [
    ([LineRequest(A, 0)], [("lines", 0, "quantity")]),
    ([LineRequest(A, 1001)], [("lines", 0, "quantity")]),
    ([LineRequest(A, 1), LineRequest(A, 2)], [("lines", 1, "product_id")]),
    ([], [("lines",)]),
    ([LineRequest(A, 1)] * 51, [("lines",)]),
])
def test_invalid_lines_are_refused_with_their_paths(
    lines: list[LineRequest], expected: list[FieldPath]
) -> None:
    with pytest.raises(InvalidInput) as exc:
        place("order-1", "alice", lines, QUOTES, NOW)
    assert paths(exc) == expected


def test_every_bad_line_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as exc:
        placed(LineRequest("nope", 1), LineRequest(B, 0))
    assert paths(exc) == [("lines", 0, "product_id"), ("lines", 1, "quantity")]


def test_products_unknown_off_sale_or_in_other_currencies_are_unavailable() -> None:
    quotes = {**QUOTES, "off": Quote("off", "O", "Off", Money(1, "EUR"), active=False),
              "usd": Quote("usd", "U", "Usd", Money(1, "USD"), active=True)}
    with pytest.raises(Unavailable) as exc:
        place("o", "alice", [LineRequest("unknown", 1)], quotes, NOW)
    assert paths(exc) == [("lines", 0, "product_id")]
    with pytest.raises(Unavailable) as exc:
        place("o", "alice", [LineRequest(A, 1), LineRequest("off", 1), LineRequest("usd", 1)],
              quotes, NOW)
    assert paths(exc) == [("lines", 1, "product_id"), ("lines", 2, "product_id")]


def test_stock_answers_move_a_pending_order_once() -> None:
    confirmed, rejected = placed(), placed()
    confirmed.confirm(NOW)
    rejected.reject("not enough stock", NOW)
    assert (confirmed.status, confirmed.version) == (OrderStatus.CONFIRMED, 2)
    assert confirmed.events[-1] == OrderConfirmed("order-1")
    assert (rejected.status, rejected.rejection_reason) == (OrderStatus.REJECTED,
                                                             "not enough stock")
    assert rejected.events[-1] == OrderRejected("order-1", "not enough stock")
    assert not confirmed.awaits_stock
    with pytest.raises(Conflict):
        confirmed.reject("late", NOW)


@pytest.mark.parametrize("before", ["pending", "confirmed"])
def test_pending_and_confirmed_orders_can_be_cancelled(before: str) -> None:
    order = placed()
    if before == "confirmed":
        order.confirm(NOW)
    assert order.cancel(NOW) is True
    assert order.status is OrderStatus.CANCELLED
    assert order.events[-1] == OrderCancelled("order-1", OrderStatus(before))
    assert order.cancel(NOW) is False  # again: nothing changes, nothing recorded
    assert len([e for e in order.events if isinstance(e, OrderCancelled)]) == 1


def test_a_rejected_order_cannot_be_cancelled() -> None:
    order = placed()
    order.reject("no stock", NOW)
    with pytest.raises(Conflict):
        order.cancel(NOW)

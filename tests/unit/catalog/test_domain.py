"""The catalog's pure rules: product invariants, stock counts, all-or-nothing reservations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from archway.catalog.domain import (
    Product,
    ProductChanges,
    ProductDraft,
    Rejected,
    Reserved,
    Stock,
    merge_lines,
    new_product,
    release_all,
    reserve_all,
)
from archway.kernel.errors import FieldPath, InvalidInput
from archway.kernel.money import Money

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def draft(**overrides: object) -> ProductDraft:
    values: dict[str, object] = {
        "sku": "COF-0001", "name": "House Blend", "category": "coffee",
        "price": Money(1299, "EUR"), "description": "Chocolate and hazelnut.",
    }
    return ProductDraft(**{**values, **overrides})  # type: ignore[arg-type]


def product(on_hand: int = 10, reserved: int = 0, **overrides: object) -> Product:
    made = replace(new_product(draft(), NOW), stock=Stock(on_hand, reserved))
    return replace(made, **overrides)  # type: ignore[arg-type]


def paths(exc: pytest.ExceptionInfo[InvalidInput]) -> set[FieldPath]:
    return {error.path for error in exc.value.errors}


def test_a_new_product_starts_at_version_1_with_no_stock() -> None:
    made = new_product(draft(), NOW)
    assert made.version == 1
    assert made.created_at == made.updated_at == NOW
    assert made.available == 0
    assert made.active


def test_a_new_product_reports_every_invalid_value_at_once() -> None:
    with pytest.raises(InvalidInput) as exc:
        new_product(draft(
            sku="bad sku!", name="  ", description="x" * 5001, category="Board Games",
            price=Money(-1, "EUR"),
        ), NOW)
    assert paths(exc) == {("sku",), ("name",), ("description",), ("category",), ("price", "amount")}


@pytest.mark.parametrize("sku", ["A", "coffee.beans_2-kg", "X" * 64])
def test_sku_accepts_letters_digits_dot_underscore_dash(sku: str) -> None:
    assert new_product(draft(sku=sku), NOW).sku == sku


@pytest.mark.parametrize("sku", ["", "X" * 65, "has space", "é"])
def test_sku_refuses_anything_else(sku: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        new_product(draft(sku=sku), NOW)
    assert paths(exc) == {("sku",)}


@pytest.mark.parametrize("category", ["coffee", "board-games", "a1"])
def test_category_is_a_lower_case_slug(category: str) -> None:
    assert new_product(draft(category=category), NOW).category == category


@pytest.mark.parametrize("category", ["", "Coffee", "board games", "-x", "x-", "a" * 65])
def test_category_refuses_other_shapes(category: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        new_product(draft(category=category), NOW)
    assert paths(exc) == {("category",)}


def test_a_free_product_is_allowed() -> None:
    assert new_product(draft(price=Money(0, "EUR")), NOW).price.amount == 0


def test_a_change_bumps_the_version_and_the_update_time() -> None:
    changed = product().changed(ProductChanges(name="Dark Blend", active=False), LATER)
    assert (changed.name, changed.active, changed.version) == ("Dark Blend", False, 2)
    assert changed.updated_at == LATER
    assert changed.created_at == NOW


def test_a_change_that_changes_nothing_keeps_the_version() -> None:
    original = product()
    assert original.changed(ProductChanges(), LATER) is original
    assert original.changed(ProductChanges(name=original.name), LATER) is original


def test_a_change_is_checked_like_a_new_product() -> None:
    with pytest.raises(InvalidInput) as exc:
        product().changed(ProductChanges(price=Money(-5, "EUR"), category="Nope"), LATER)
    assert paths(exc) == {("price", "amount"), ("category",)}


def test_expected_versions_match_one_or_any_of_several() -> None:
    current = product(version=3)
    assert current.matches(None)
    assert current.matches(3)
    assert not current.matches(2)
    assert current.matches(frozenset({1, 3}))
    assert not current.matches(frozenset())


def test_available_is_on_hand_minus_reserved() -> None:
    assert Stock(10, 4).available == 6


@pytest.mark.parametrize(("on_hand", "reserved", "path"), [
    (-1, 0, ("on_hand",)), (5, -1, ("reserved",)), (3, 4, ("on_hand",)),
])
def test_stock_refuses_impossible_counts(on_hand: int, reserved: int, path: FieldPath) -> None:
    with pytest.raises(InvalidInput) as exc:
        Stock(on_hand, reserved)
    assert paths(exc) == {path}


def test_a_stock_count_below_what_orders_hold_is_refused_clearly() -> None:
    with pytest.raises(InvalidInput) as exc:
        product(on_hand=10, reserved=4).with_on_hand(3, LATER)
    assert paths(exc) == {("on_hand",)}
    assert "4 units reserved" in exc.value.errors[0].detail


def test_a_stock_count_is_a_new_version_of_the_product() -> None:
    counted = product(on_hand=10, reserved=4).with_on_hand(4, LATER)
    assert counted.stock == Stock(4, 4)
    assert counted.version == 2
    assert counted.stock_level.version == 2
    assert counted.available == 0


def test_reserve_all_holds_every_line() -> None:
    a, b = product(on_hand=5, id="a"), product(on_hand=3, reserved=1, id="b")
    decision = reserve_all({"a": a, "b": b}, [("a", 2), ("b", 2)])
    assert decision == Reserved({"a": Stock(5, 2), "b": Stock(3, 3)}, {"a": 2, "b": 2})


def test_reserve_all_holds_nothing_when_one_line_falls_short() -> None:
    a, b = product(on_hand=5, id="a"), product(on_hand=3, reserved=2, id="b")
    assert reserve_all({"a": a, "b": b}, [("a", 1), ("b", 2)]) == Rejected(
        "insufficient stock for b")


def test_reserve_all_counts_repeated_lines_together() -> None:
    a = product(on_hand=3, id="a")
    assert reserve_all({"a": a}, [("a", 2), ("a", 2)]) == Rejected("insufficient stock for a")
    assert isinstance(reserve_all({"a": a}, [("a", 1), ("a", 2)]), Reserved)


def test_reserve_all_rejects_unknown_and_withdrawn_products() -> None:
    withdrawn = product(id="w", active=False)
    assert reserve_all({}, [("x", 1)]) == Rejected("unknown product x")
    assert reserve_all({"w": withdrawn}, [("w", 1)]) == Rejected(
        "product w is no longer sold")


@pytest.mark.parametrize("lines", [[], [("a", 0)], [("a", -2)]])
def test_lines_need_positive_quantities(lines: list[tuple[str, int]]) -> None:
    with pytest.raises(InvalidInput):
        merge_lines(lines)


def test_lines_merge_in_id_order_so_writers_lock_alike() -> None:
    assert list(merge_lines([("b", 1), ("a", 2), ("b", 3)]).items()) == [("a", 2), ("b", 4)]


def test_release_all_gives_back_held_units_and_skips_deleted_products() -> None:
    a = product(on_hand=5, reserved=3, id="a")
    assert release_all({"a": a}, {"a": 2, "gone": 1}) == {"a": Stock(5, 1)}


def test_release_never_drops_below_zero() -> None:
    assert Stock(5, 1).release(3) == Stock(5, 0)

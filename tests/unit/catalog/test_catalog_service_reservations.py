"""Reservations through the service, and the port itself: refusals are return values, not
exceptions — fakes and real alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from archway.catalog.domain import (
    ProductChanges,
    Rejected,
    ReservationOutcome,
    Reserved,
    Stock,
)
from archway.catalog.service import CatalogService, Products
from archway.catalog.store import CatalogRepository
from archway.kernel.db import Database
from archway.kernel.errors import InvalidInput
from archway.kernel.uow import UnitsOfWork
from tests.fakes import FakeProducts, FakeUnitsOfWork
from tests.unit.catalog.shop import ADMIN, UNKNOWN, Shop

# -- reservations -------------------------------------------------------------------------------


async def test_a_reservation_holds_every_line_and_changes_the_versions(shop: Shop) -> None:
    a = await shop.product("A", on_hand=5)
    b = await shop.product("B", on_hand=3)
    outcome = await shop.service.reserve("order-1", [(a.id, 2), (b.id, 3), (a.id, 1)])
    assert (outcome.order_id, outcome.accepted, outcome.reason) == ("order-1", True, None)
    assert await shop.stock(a.id) == (5, 3)
    assert await shop.stock(b.id) == (3, 3)
    assert (await shop.service.get_product(a.id)).version == a.version + 1
    assert (await shop.service.get_product(b.id)).available == 0


async def test_a_reservation_that_cannot_be_met_holds_nothing(shop: Shop) -> None:
    a = await shop.product("A", on_hand=5)
    b = await shop.product("B", on_hand=1)
    outcome = await shop.service.reserve("order-1", [(a.id, 2), (b.id, 2)])
    assert (outcome.accepted, outcome.reason) == (False, f"insufficient stock for {b.id}")
    assert await shop.stock(a.id) == (5, 0)
    assert (await shop.service.get_product(a.id)).version == a.version


async def test_a_reservation_of_an_unknown_or_withdrawn_product_is_rejected(shop: Shop) -> None:
    withdrawn = await shop.product("W", on_hand=5, active=False)
    on_sale = await shop.product("S", on_hand=5)
    unknown = await shop.service.reserve("o-1", [(on_sale.id, 1), (UNKNOWN, 1)])
    assert unknown.reason == f"unknown product {UNKNOWN}"
    assert (await shop.service.reserve("o-2", [(withdrawn.id, 1)])).reason == (
        f"product {withdrawn.id} is no longer sold")
    assert (await shop.service.reserve("o-3", [("not-an-id", 1)])).reason == (
        "unknown product not-an-id")
    assert await shop.stock(on_sale.id) == (5, 0)


async def test_reserve_refuses_lines_without_units(shop: Shop) -> None:
    a = await shop.product("A", on_hand=5)
    for lines in ([], [(a.id, 0)]):
        with pytest.raises(InvalidInput):
            await shop.service.reserve("order-1", lines)
    assert (await shop.service.reserve("order-1", [(a.id, 1)])).accepted


async def test_reserving_again_for_the_same_order_answers_the_same_and_holds_once(
    shop: Shop,
) -> None:
    a = await shop.product("A", on_hand=5)
    first = await shop.service.reserve("order-1", [(a.id, 2)])
    again = await shop.service.reserve("order-1", [(a.id, 2)])
    assert first == again
    assert await shop.stock(a.id) == (5, 2)


async def test_a_rejected_order_stays_rejected_even_after_a_restock(shop: Shop) -> None:
    a = await shop.product("A", on_hand=1)
    first = await shop.service.reserve("order-1", [(a.id, 2)])
    await shop.service.set_stock(ADMIN, a.id, 10)
    assert await shop.service.reserve("order-1", [(a.id, 2)]) == first
    assert await shop.stock(a.id) == (10, 0)


async def test_release_gives_back_once(shop: Shop) -> None:
    a = await shop.product("A", on_hand=5)
    await shop.service.reserve("order-1", [(a.id, 2)])
    await shop.service.reserve("order-2", [(a.id, 1)])
    held = (await shop.service.get_product(a.id)).version
    await shop.service.release("order-1")
    assert (await shop.service.get_product(a.id)).version == held + 1
    await shop.service.release("order-1")
    assert await shop.stock(a.id) == (5, 1)
    assert (await shop.service.reserve("order-1", [(a.id, 2)])).accepted  # replayed, not re-held
    assert await shop.stock(a.id) == (5, 1)


async def test_releasing_a_rejected_order_gives_back_nothing(shop: Shop) -> None:
    a = await shop.product("A", on_hand=3)
    await shop.service.reserve("order-1", [(a.id, 3)])
    assert not (await shop.service.reserve("order-2", [(a.id, 1)])).accepted
    await shop.service.release("order-2")
    assert await shop.stock(a.id) == (3, 3)
    assert not (await shop.service.reserve("order-2", [(a.id, 1)])).accepted


async def test_a_release_that_overtakes_its_reserve_makes_it_hold_nothing(shop: Shop) -> None:
    a = await shop.product("A", on_hand=5)
    await shop.service.release("order-1")
    await shop.service.release("order-1")
    outcome = await shop.service.reserve("order-1", [(a.id, 2)])
    assert (outcome.accepted, outcome.reason) == (False, "the order was cancelled")
    assert await shop.stock(a.id) == (5, 0)


async def test_release_survives_a_product_deleted_meanwhile(shop: Shop) -> None:
    a = await shop.product("A", on_hand=5)
    b = await shop.product("B", on_hand=5)
    await shop.service.reserve("order-1", [(a.id, 1), (b.id, 2)])
    await shop.service.delete_product(ADMIN, a.id)
    await shop.service.release("order-1")
    assert await shop.stock(b.id) == (5, 0)
    await shop.service.release("order-1")
    assert await shop.stock(b.id) == (5, 0)


# -- the port itself: refusals are return values ----------------------------------------------

Port = tuple[UnitsOfWork[Any], Callable[[Any], Products]]
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["fake", "real"])
def port(request: pytest.FixtureRequest, database: Database) -> Port:
    if request.param == "fake":
        return FakeUnitsOfWork(), FakeProducts
    return database, CatalogRepository


def shop_on(port: Port) -> Shop:
    db, products = port
    return Shop(CatalogService(db, products=products, cache_ttl_seconds=0))


async def test_conditional_writes_at_a_stale_version_answer_false(port: Port) -> None:
    db, products = port
    shop = shop_on(port)
    product = await shop.product("SKU-1", on_hand=3)
    moved = product.changed(ProductChanges(name="Moved"), NOW)

    def stale(conn: Any) -> tuple[bool, bool, bool]:
        repo = products(conn)
        return (repo.save(moved, product.version - 1),
                repo.save_on_hand(product.with_on_hand(9, NOW), product.version + 5),
                repo.remove(product.id, product.version + 1))

    assert await db.write(stale) == (False, False, False)
    assert await shop.service.get_product(product.id) == product
    assert await db.write(lambda conn: products(conn).save(moved, product.version)) is True
    assert await shop.service.get_product(product.id) == moved


async def test_a_count_below_the_reserved_units_answers_false(port: Port) -> None:
    db, products = port
    shop = shop_on(port)
    product = await shop.product("SKU-1", on_hand=5)
    await shop.service.reserve("order-1", [(product.id, 4)])
    current = await shop.service.get_product(product.id, ADMIN)
    # A count decided on stale stock (nothing reserved yet): the store still refuses it.
    stale = replace(current, stock=Stock(2, 0), version=current.version + 1)
    assert await db.write(
        lambda conn: products(conn).save_on_hand(stale, current.version)) is False
    assert await shop.stock(product.id) == (5, 4)


async def test_a_hold_that_falls_short_answers_the_product_and_holds_nothing(
    port: Port,
) -> None:
    db, products = port
    shop = shop_on(port)
    a = await shop.product("A", on_hand=5)
    b = await shop.product("B", on_hand=1)
    stale = Reserved(stocks={}, quantities={a.id: 2, b.id: 3})  # a is held, then b falls short
    assert await db.write(lambda conn: products(conn).hold("order-1", stale, NOW)) == b.id
    assert await shop.stock(a.id) == (5, 0) and await shop.stock(b.id) == (1, 0)
    assert await db.read(lambda conn: products(conn).reservation("order-1")) is None
    missing = Reserved(stocks={}, quantities={UNKNOWN: 1})
    assert await db.write(lambda conn: products(conn).hold("order-2", missing, NOW)) == UNKNOWN


async def test_the_reservation_rows_answer_what_was_decided(port: Port) -> None:
    db, products = port
    shop = shop_on(port)
    a = await shop.product("A", on_hand=5)

    def record(conn: Any) -> str | None:
        repo = products(conn)
        repo.record_rejection("rejected", Rejected("no"), NOW)
        repo.record_cancellation("cancelled", NOW)
        return repo.hold("held", Reserved({}, {a.id: 2}), NOW)

    assert await db.write(record) is None

    def read(conn: Any) -> dict[str, tuple[object, object]]:
        repo = products(conn)
        return {order: (repo.held_lines(order), repo.reservation(order))
                for order in ("held", "rejected", "cancelled", "unheard")}

    assert await db.read(read) == {
        "held": ({a.id: 2}, ReservationOutcome("held", accepted=True)),
        "rejected": ({}, ReservationOutcome("rejected", accepted=False, reason="no")),
        "cancelled": ({}, ReservationOutcome(
            "cancelled", accepted=False, reason="the order was cancelled")),
        "unheard": (None, None),
    }
    after = await shop.service.get_product(a.id)
    assert (after.version, after.updated_at, after.stock) == (a.version + 1, NOW, Stock(5, 2))


async def test_orders_reserved_together_answer_as_one_by_one(port: Port) -> None:
    """``reserve_all_within`` (the reservations consumer's batch, through ``reservations_of``
    and ``hold_all``): each order decided on the stock the orders before it left, an order
    already recorded answered as it was, and every hold written at once."""
    db, products = port
    shop = shop_on(port)
    a = await shop.product("A", on_hand=5)
    b = await shop.product("B", on_hand=2)
    await shop.service.reserve("earlier", [(b.id, 1)])
    outcomes = await db.write(lambda tx: shop.service.reserve_all_within(tx, [
        ("first", [(a.id, 2), (b.id, 1)]), ("second", [(b.id, 1)]),
        ("earlier", [(b.id, 1)]), ("third", [(a.id, 3)])]))
    assert [(o.order_id, o.accepted, o.reason) for o in outcomes] == [
        ("first", True, None), ("second", False, f"insufficient stock for {b.id}"),
        ("earlier", True, None), ("third", True, None)]
    assert await shop.stock(a.id) == (5, 5) and await shop.stock(b.id) == (2, 2)
    assert await db.read(lambda tx: products(tx).held_lines("third")) == {a.id: 3}

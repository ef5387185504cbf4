"""Catalog use cases, run against the in-memory fakes and against the real store alike.

The same tests pass on both, which keeps ``FakeProducts`` honest; the last few talk to the
port itself, to pin how a refusal comes back (a return value, not an exception).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from archway.catalog.domain import (
    Product,
    ProductChanges,
    ProductDraft,
    ProductFilters,
    ProductSort,
    Rejected,
    ReservationOutcome,
    Reserved,
    Stock,
)
from archway.catalog.service import CatalogService, Products
from archway.catalog.store import CatalogRepository
from archway.kernel.auth.principal import Principal
from archway.kernel.db import Database, UnitsOfWork
from archway.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed
from archway.kernel.money import Money
from archway.kernel.pagination import PageRequest
from archway.topologies.monolith import Monolith
from tests.fakes import FakeProducts, FakeUnitsOfWork

ADMIN = Principal("admin-1", frozenset({"catalog:write"}), frozenset({"admin"}))
CUSTOMER = Principal("user-1", frozenset({"catalog:write"}), frozenset({"customer"}))
ADMIN_WITHOUT_SCOPE = Principal("admin-2", frozenset({"profile"}), frozenset({"admin"}))
EVERYTHING = ProductFilters()
UNKNOWN = "0190a6e5-0000-7000-8000-000000000000"


@pytest.fixture(params=["fake", "real"])
async def service(
    request: pytest.FixtureRequest, graph: Monolith, database: Database
) -> AsyncIterator[CatalogService]:
    if request.param == "fake":
        yield CatalogService(FakeUnitsOfWork(), products=FakeProducts,  # type: ignore[arg-type]
                             cache_ttl_seconds=0)
    else:
        yield graph.catalog  # the real store; `database` empties its tables afterwards


@dataclass
class Shop:
    """A service and a way to make products in it, in the shape tests read best."""

    service: CatalogService

    async def product(
        self, sku: str, price: int = 1000, on_hand: int = 0, **fields: Any
    ) -> Product:
        values: dict[str, Any] = {
            "name": f"Product {sku}", "category": "coffee", "description": "", **fields}
        product = await self.service.create_product(
            ADMIN, ProductDraft(sku=sku, price=Money(price, "EUR"), **values))
        if on_hand:
            await self.service.set_stock(ADMIN, product.id, on_hand)
            return await self.service.get_product(product.id, ADMIN)
        return product

    async def stock(self, product_id: str) -> tuple[int, int]:
        level = await self.service.get_stock(ADMIN, product_id)
        return level.stock.on_hand, level.stock.reserved

    async def names(
        self, filters: ProductFilters = EVERYTHING, sort: ProductSort = ProductSort.CREATED_AT
    ) -> list[str]:
        page = await self.service.list_products(filters, sort, PageRequest(limit=100, offset=0))
        return [product.name for product in page.items]


@pytest.fixture
def shop(service: CatalogService) -> Shop:
    return Shop(service)


# -- create, read, list -----------------------------------------------------------------------


async def test_a_created_product_reads_back_identically(shop: Shop) -> None:
    created = await shop.product("SKU-1", price=1999, description="Rich & round")
    assert (created.version, created.stock) == (1, Stock(0, 0))
    assert await shop.service.get_product(created.id) == created
    assert await shop.service.get_product(created.id, ADMIN) == created


async def test_skus_are_unique_and_a_clash_changes_nothing(shop: Shop) -> None:
    await shop.product("SKU-1")
    other = await shop.product("SKU-2")
    with pytest.raises(Conflict):
        await shop.product("SKU-1")
    with pytest.raises(Conflict):
        await shop.service.update_product(
            ADMIN, other.id, ProductChanges(sku="SKU-1", name="Clash"))
    assert await shop.service.get_product(other.id) == other
    assert await shop.names() == ["Product SKU-1", "Product SKU-2"]


async def test_unknown_and_malformed_ids_are_not_found(shop: Shop) -> None:
    for product_id in (UNKNOWN, "not-an-id", "'; DROP"):
        with pytest.raises(NotFound):
            await shop.service.get_product(product_id, ADMIN)
        with pytest.raises(NotFound):
            await shop.service.update_product(ADMIN, product_id, ProductChanges(name="x"))
        with pytest.raises(NotFound):
            await shop.service.delete_product(ADMIN, product_id)
        with pytest.raises(NotFound):
            await shop.service.set_stock(ADMIN, product_id, 1)


async def test_a_product_off_sale_is_hidden_from_the_public_but_not_from_admins(
    shop: Shop,
) -> None:
    product = await shop.product("SKU-1", active=False)
    with pytest.raises(NotFound):
        await shop.service.get_product(product.id)
    with pytest.raises(NotFound):
        await shop.service.get_product(product.id, ADMIN_WITHOUT_SCOPE)
    assert (await shop.service.get_product(product.id, ADMIN)).id == product.id
    assert await shop.names() == []


async def test_list_filters_by_text_in_any_case_without_wildcards(shop: Shop) -> None:
    await shop.product("A", name="Dark Roast", description="smoky")
    await shop.product("B", name="Light Roast", description="Fruity and DARK chocolate")
    await shop.product("C", name="Green Tea", description="grassy")
    await shop.product("D", name="100% Arabica")
    await shop.product("E", name="snake_case mug")
    await shop.product("F", name="snakeXcase mug")
    assert await shop.names(ProductFilters(q="dark")) == ["Dark Roast", "Light Roast"]
    assert await shop.names(ProductFilters(q="TEA")) == ["Green Tea"]
    assert await shop.names(ProductFilters(q="0%")) == ["100% Arabica"]
    assert await shop.names(ProductFilters(q="e_c")) == ["snake_case mug"]
    assert await shop.names(ProductFilters(q="\\")) == []


async def test_list_filters_by_category_and_inclusive_price_bounds(shop: Shop) -> None:
    await shop.product("A", price=500, name="five", category="books")
    await shop.product("B", price=1000, name="ten", category="books")
    await shop.product("C", price=1500, name="fifteen", category="games")
    books = ProductFilters(category="books", min_price=500, max_price=1000)
    assert await shop.names(books, ProductSort.PRICE) == ["five", "ten"]
    bounded = ProductFilters(min_price=1000, max_price=1500)
    assert await shop.names(bounded, ProductSort.PRICE) == ["ten", "fifteen"]
    assert await shop.names(ProductFilters(min_price=2000)) == []
    assert await shop.names(ProductFilters(category="tea")) == []


async def test_list_sorts_with_ties_broken_by_creation(shop: Shop) -> None:
    await shop.product("A", price=300, name="Cherry")
    await shop.product("B", price=100, name="Apple")
    await shop.product("C", price=300, name="Banana")
    await shop.product("D", price=200, name="Date")
    assert await shop.names() == ["Cherry", "Apple", "Banana", "Date"]
    assert await shop.names(sort=ProductSort.NAME) == ["Apple", "Banana", "Cherry", "Date"]
    assert await shop.names(sort=ProductSort.PRICE) == ["Apple", "Date", "Cherry", "Banana"]
    assert await shop.names(sort=ProductSort.PRICE_DESC) == ["Banana", "Cherry", "Date", "Apple"]


async def test_offset_pages_count_the_products_on_sale(shop: Shop) -> None:
    for n in range(5):
        await shop.product(f"S{n}", name=f"p{n}")
    await shop.product("OFF", active=False)
    page = await shop.service.list_products(
        EVERYTHING, ProductSort.CREATED_AT, PageRequest(limit=2, offset=2))
    assert [p.name for p in page.items] == ["p2", "p3"]
    assert (page.total, page.next_after) == (5, None)
    beyond = await shop.service.list_products(
        EVERYTHING, ProductSort.CREATED_AT, PageRequest(limit=2, offset=10))
    assert (list(beyond.items), beyond.total) == ([], 5)


@pytest.mark.parametrize("sort", list(ProductSort))
async def test_cursor_pages_walk_every_row_once_in_order(shop: Shop, sort: ProductSort) -> None:
    for n, price in enumerate([300, 100, 300, 200, 300, 100, 400]):
        await shop.product(f"S{n}", price=price, name=f"name {n % 3}")
    expected = await shop.names(sort=sort)
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = await shop.service.list_products(EVERYTHING, sort, PageRequest(3, after=after))
        seen += [p.name for p in page.items]
        assert page.total is None
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == expected and len(seen) == 7


async def test_a_cursor_is_the_last_sort_key_and_id_and_the_last_full_page_has_no_next(
    shop: Shop,
) -> None:
    for n in range(4):
        await shop.product(f"S{n}", name=f"n{n}")
    first = await shop.service.list_products(EVERYTHING, ProductSort.NAME, PageRequest(2))
    assert first.next_after == ("n1", first.items[-1].id)
    second = await shop.service.list_products(
        EVERYTHING, ProductSort.NAME, PageRequest(2, after=first.next_after))
    assert [p.name for p in second.items] == ["n2", "n3"]
    assert second.next_after is None
    by_date = await shop.service.list_products(EVERYTHING, ProductSort.CREATED_AT, PageRequest(1))
    assert by_date.next_after == (by_date.items[0].created_at.isoformat(), by_date.items[0].id)


@pytest.mark.parametrize(("sort", "after"), [
    (ProductSort.PRICE, ("cheap", "x")),
    (ProductSort.NAME, (5, "x")),
    (ProductSort.CREATED_AT, ("yesterday", "x")),
    (ProductSort.CREATED_AT, (5, "x")),
    (ProductSort.PRICE_DESC, (5, 7)),
])
async def test_a_cursor_of_the_wrong_shape_is_invalid_input(
    shop: Shop, sort: ProductSort, after: tuple[object, object]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        await shop.service.list_products(EVERYTHING, sort, PageRequest(2, after=after))
    assert caught.value.errors[0].pointer == "cursor"


async def test_get_prices_answers_existing_products_on_sale_or_not(shop: Shop) -> None:
    on_sale = await shop.product("A", price=250)
    withdrawn = await shop.product("B", price=990, active=False)
    prices = await shop.service.get_prices([on_sale.id, withdrawn.id, UNKNOWN, "nope"])
    assert set(prices) == {on_sale.id, withdrawn.id}
    assert prices[on_sale.id].price == Money(250, "EUR") and not prices[withdrawn.id].active
    assert await shop.service.get_prices([]) == {}


# -- conditional writes -------------------------------------------------------------------------


async def test_update_at_the_current_version_bumps_it(shop: Shop) -> None:
    product = await shop.product("SKU-1")
    updated = await shop.service.update_product(
        ADMIN, product.id, ProductChanges(name="Renamed", price=Money(5, "EUR")), product.version)
    assert (updated.name, updated.price, updated.version) == ("Renamed", Money(5, "EUR"), 2)
    assert updated.created_at == product.created_at
    assert await shop.service.get_product(product.id) == updated


async def test_update_at_a_stale_version_is_refused_and_changes_nothing(shop: Shop) -> None:
    product = await shop.product("SKU-1")
    await shop.service.update_product(ADMIN, product.id, ProductChanges(name="First"), 1)
    for stale in (1, frozenset({1, 7}), frozenset()):
        with pytest.raises(PreconditionFailed):
            await shop.service.update_product(
                ADMIN, product.id, ProductChanges(name="Lost"), stale)
    assert (await shop.service.get_product(product.id)).name == "First"
    any_of = await shop.service.update_product(
        ADMIN, product.id, ProductChanges(name="Any of"), frozenset({1, 2}))
    assert any_of.version == 3


async def test_an_update_that_changes_nothing_keeps_the_version(shop: Shop) -> None:
    product = await shop.product("SKU-1", name="Same")
    same = await shop.service.update_product(ADMIN, product.id, ProductChanges(name="Same"), 1)
    assert same == product
    assert (await shop.service.get_product(product.id)).version == 1


async def test_an_invalid_update_is_refused_and_changes_nothing(shop: Shop) -> None:
    product = await shop.product("SKU-1")
    with pytest.raises(InvalidInput):
        await shop.service.update_product(ADMIN, product.id, ProductChanges(name=" ", sku="a b"))
    assert await shop.service.get_product(product.id) == product


async def test_delete_then_not_found_for_everyone(shop: Shop) -> None:
    product = await shop.product("SKU-1", on_hand=5)
    with pytest.raises(PreconditionFailed):
        await shop.service.delete_product(ADMIN, product.id, product.version + 1)
    await shop.service.delete_product(ADMIN, product.id, product.version)
    for caller in (None, ADMIN):
        with pytest.raises(NotFound):
            await shop.service.get_product(product.id, caller)
    with pytest.raises(NotFound):
        await shop.service.delete_product(ADMIN, product.id)
    with pytest.raises(NotFound):
        await shop.service.get_stock(ADMIN, product.id)
    assert await shop.service.get_prices([product.id]) == {}
    await shop.product("SKU-1")  # the sku is free again


async def test_a_stock_count_changes_the_version_and_shows_available(shop: Shop) -> None:
    product = await shop.product("SKU-1")
    level = await shop.service.set_stock(ADMIN, product.id, 12, product.version)
    assert (level.stock.on_hand, level.stock.reserved, level.stock.available) == (12, 0, 12)
    assert level.version == product.version + 1
    assert await shop.service.get_stock(ADMIN, product.id) == level
    assert (await shop.service.get_product(product.id)).available == 12
    with pytest.raises(PreconditionFailed):
        await shop.service.set_stock(ADMIN, product.id, 3, product.version)
    assert await shop.stock(product.id) == (12, 0)


async def test_a_stock_count_below_the_reserved_units_is_refused(shop: Shop) -> None:
    product = await shop.product("SKU-1", on_hand=10)
    assert (await shop.service.reserve("order-1", [(product.id, 4)])).accepted
    version = (await shop.service.get_stock(ADMIN, product.id)).version
    with pytest.raises(InvalidInput) as caught:
        await shop.service.set_stock(ADMIN, product.id, 3)
    assert caught.value.errors[0].pointer == "/on_hand"
    with pytest.raises(InvalidInput):
        await shop.service.set_stock(ADMIN, product.id, -1)
    assert (await shop.service.get_stock(ADMIN, product.id)).version == version
    assert (await shop.service.set_stock(ADMIN, product.id, 4)).stock.available == 0


async def test_writes_are_for_admins_with_the_scope(shop: Shop) -> None:
    product = await shop.product("SKU-1", on_hand=2)
    draft = ProductDraft(sku="SKU-9", name="x", category="coffee", price=Money(1, "EUR"))
    for caller in (CUSTOMER, ADMIN_WITHOUT_SCOPE):
        with pytest.raises(Forbidden):
            await shop.service.create_product(caller, draft)
        with pytest.raises(Forbidden):
            await shop.service.update_product(caller, product.id, ProductChanges(name="y"))
        with pytest.raises(Forbidden):
            await shop.service.delete_product(caller, product.id)
        with pytest.raises(Forbidden):
            await shop.service.set_stock(caller, product.id, 5)
        with pytest.raises(Forbidden):
            await shop.service.get_stock(caller, product.id)
    assert await shop.service.get_product(product.id, ADMIN) == product
    assert await shop.names() == ["Product SKU-1"]


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

Port = tuple[UnitsOfWork, Callable[[Any], Products]]
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["fake", "real"])
def port(request: pytest.FixtureRequest, database: Database) -> Port:
    if request.param == "fake":
        return FakeUnitsOfWork(), FakeProducts  # type: ignore[return-value]
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

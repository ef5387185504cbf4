"""Catalog reads: create, get, list, paging, prices — on the fakes and the real store alike."""

from __future__ import annotations

import pytest

from archway.catalog.domain import (
    ProductChanges,
    ProductFilters,
    ProductSort,
    Stock,
)
from archway.kernel.errors import Conflict, FieldError, InvalidInput, NotFound
from archway.kernel.money import Money
from archway.kernel.pagination import PageRequest
from tests.unit.catalog.shop import ADMIN, ADMIN_WITHOUT_SCOPE, EVERYTHING, UNKNOWN, Shop

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
    assert caught.value.errors[0] == FieldError(
        ("cursor",), "is not a cursor this API returned", parameter=True)


async def test_get_prices_answers_existing_products_on_sale_or_not(shop: Shop) -> None:
    on_sale = await shop.product("A", price=250)
    withdrawn = await shop.product("B", price=990, active=False)
    prices = await shop.service.get_prices([on_sale.id, withdrawn.id, UNKNOWN, "nope"])
    assert set(prices) == {on_sale.id, withdrawn.id}
    assert prices[on_sale.id].price == Money(250, "EUR") and not prices[withdrawn.id].active
    assert await shop.service.get_prices([]) == {}


async def test_products_by_id_show_each_caller_what_get_product_shows(shop: Shop) -> None:
    on_sale = await shop.product("SKU-1")
    off_sale = await shop.product("SKU-2", active=False)
    ids = [on_sale.id, off_sale.id, UNKNOWN, "not-an-id"]
    assert await shop.service.visible_products(ids) == {on_sale.id: on_sale}
    assert await shop.service.visible_products(ids, ADMIN_WITHOUT_SCOPE) == {on_sale.id: on_sale}
    assert await shop.service.visible_products(ids, ADMIN) == {
        on_sale.id: on_sale, off_sale.id: off_sale}
    assert await shop.service.visible_products([]) == {}

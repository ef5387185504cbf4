"""Catalog products on a real database: listing, paging, conditional writes, refusals."""

from __future__ import annotations

import pytest

from archway.catalog.domain import ProductChanges, ProductDraft, ProductFilters, ProductSort
from archway.catalog.seed import seed_catalog
from archway.catalog.service import CatalogService
from archway.catalog.store import CatalogRepository
from archway.kernel.auth.principal import Principal
from archway.kernel.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from archway.kernel.ids import new_id
from archway.kernel.money import Money
from archway.kernel.pagination import PageRequest
from tests.integration.catalog.conftest import ADMIN, MakeProduct

CUSTOMER = Principal("user-1", scopes=frozenset({"catalog:write"}), roles=frozenset({"customer"}))
ADMIN_WITHOUT_SCOPE = Principal(
    "admin-2", scopes=frozenset({"profile"}), roles=frozenset({"admin"}))
EVERYTHING = ProductFilters()


async def names(
    service: CatalogService, filters: ProductFilters = EVERYTHING,
    sort: ProductSort = ProductSort.CREATED_AT,
) -> list[str]:
    page = await service.list_products(filters, sort, PageRequest(limit=100, offset=0))
    return [product.name for product in page.items]


async def test_a_created_product_reads_back_identically(
    service: CatalogService, make_product: MakeProduct
) -> None:
    created = await make_product("SKU-1", price=1999, description="Rich & round")
    assert await service.get_product(created.id) == created
    assert created.created_at.tzinfo is not None


async def test_skus_are_unique(service: CatalogService, make_product: MakeProduct) -> None:
    await make_product("SKU-1")
    other = await make_product("SKU-2")
    with pytest.raises(Conflict):
        await make_product("SKU-1")
    with pytest.raises(Conflict):
        await service.update_product(ADMIN, other.id, ProductChanges(sku="SKU-1"))


async def test_writes_are_for_admins_with_the_scope(
    service: CatalogService, make_product: MakeProduct
) -> None:
    product = await make_product("SKU-1")
    draft = ProductDraft(sku="SKU-9", name="x", category="coffee", price=Money(1, "EUR"))
    for caller in (CUSTOMER, ADMIN_WITHOUT_SCOPE):
        with pytest.raises(Forbidden):
            await service.create_product(caller, draft)
        with pytest.raises(Forbidden):
            await service.update_product(caller, product.id, ProductChanges(name="y"))
        with pytest.raises(Forbidden):
            await service.delete_product(caller, product.id)
        with pytest.raises(Forbidden):
            await service.set_stock(caller, product.id, 5)
        with pytest.raises(Forbidden):
            await service.get_stock(caller, product.id)


async def test_unknown_and_malformed_ids_are_not_found(service: CatalogService) -> None:
    for product_id in ("0190a6e5-0000-7000-8000-000000000000", "not-an-id", "'; DROP"):
        with pytest.raises(NotFound):
            await service.get_product(product_id)
        with pytest.raises(NotFound):
            await service.update_product(ADMIN, product_id, ProductChanges(name="x"))


async def test_a_product_off_sale_is_hidden_from_the_public_but_not_from_admins(
    service: CatalogService, make_product: MakeProduct
) -> None:
    product = await make_product("SKU-1", active=False)
    with pytest.raises(NotFound):
        await service.get_product(product.id)
    assert (await service.get_product(product.id, ADMIN)).id == product.id
    assert await names(service) == []


async def test_list_filters_by_text_in_any_case_in_name_or_description(
    service: CatalogService, make_product: MakeProduct
) -> None:
    await make_product("A", name="Dark Roast", description="smoky")
    await make_product("B", name="Light Roast", description="Fruity and DARK chocolate")
    await make_product("C", name="Green Tea", description="grassy")
    assert sorted(await names(service, ProductFilters(q="dark"))) == ["Dark Roast", "Light Roast"]
    assert await names(service, ProductFilters(q="TEA")) == ["Green Tea"]


async def test_list_text_search_treats_wildcards_literally(
    service: CatalogService, make_product: MakeProduct
) -> None:
    await make_product("A", name="100% Arabica")
    await make_product("B", name="1000 Beans")
    await make_product("C", name="snake_case mug")
    await make_product("D", name="snakeXcase mug")
    assert await names(service, ProductFilters(q="100%")) == ["100% Arabica"]
    assert await names(service, ProductFilters(q="e_c")) == ["snake_case mug"]
    assert await names(service, ProductFilters(q="\\")) == []


async def test_list_filters_by_category_and_inclusive_price_bounds(
    service: CatalogService, make_product: MakeProduct
) -> None:
    await make_product("A", price=500, name="five", category="books")
    await make_product("B", price=1000, name="ten", category="books")
    await make_product("C", price=1500, name="fifteen", category="games")
    filters = ProductFilters(category="books", min_price=500, max_price=1000)
    assert await names(service, filters, ProductSort.PRICE) == ["five", "ten"]
    bounded = ProductFilters(min_price=1000, max_price=1500)
    assert await names(service, bounded, ProductSort.PRICE) == ["ten", "fifteen"]
    assert await names(service, ProductFilters(min_price=2000)) == []


async def test_list_sorts_with_ties_broken_by_creation(
    service: CatalogService, make_product: MakeProduct
) -> None:
    await make_product("A", price=300, name="Cherry")
    await make_product("B", price=100, name="Apple")
    await make_product("C", price=300, name="Banana")
    await make_product("D", price=200, name="Date")
    assert await names(service) == ["Cherry", "Apple", "Banana", "Date"]
    assert await names(service, sort=ProductSort.PRICE) == ["Apple", "Date", "Cherry", "Banana"]
    assert await names(service, sort=ProductSort.PRICE_DESC) == [
        "Banana", "Cherry", "Date", "Apple"]
    assert await names(service, sort=ProductSort.NAME) == ["Apple", "Banana", "Cherry", "Date"]


async def test_offset_pages_count_the_total(
    service: CatalogService, make_product: MakeProduct
) -> None:
    for n in range(5):
        await make_product(f"S{n}", name=f"p{n}")
    await make_product("OFF", active=False)
    page = await service.list_products(
        EVERYTHING, ProductSort.CREATED_AT, PageRequest(limit=2, offset=2))
    assert [p.name for p in page.items] == ["p2", "p3"]
    assert page.total == 5
    assert page.next_after is None


@pytest.mark.parametrize("sort", list(ProductSort))
async def test_cursor_pages_walk_every_row_once_in_order(
    service: CatalogService, make_product: MakeProduct, sort: ProductSort
) -> None:
    for n, price in enumerate([300, 100, 300, 200, 300, 100, 400]):
        await make_product(f"S{n}", price=price, name=f"name {n % 3}")
    expected = await names(service, sort=sort)
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = await service.list_products(EVERYTHING, sort, PageRequest(limit=3, after=after))
        seen += [p.name for p in page.items]
        assert page.total is None
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == expected
    assert len(seen) == 7


async def test_the_last_full_cursor_page_has_no_next(
    service: CatalogService, make_product: MakeProduct
) -> None:
    for n in range(4):
        await make_product(f"S{n}")
    first = await service.list_products(EVERYTHING, ProductSort.PRICE, PageRequest(limit=2))
    second = await service.list_products(
        EVERYTHING, ProductSort.PRICE, PageRequest(limit=2, after=first.next_after))
    assert len(second.items) == 2
    assert second.next_after is None


@pytest.mark.parametrize(("sort", "after"), [
    (ProductSort.PRICE, ("cheap", "x")),
    (ProductSort.NAME, (5, "x")),
    (ProductSort.CREATED_AT, ("yesterday", "x")),
    (ProductSort.PRICE, (5, 7)),
])
async def test_a_cursor_of_the_wrong_shape_is_invalid_input(
    service: CatalogService, sort: ProductSort, after: tuple[object, object]
) -> None:
    with pytest.raises(InvalidInput) as exc:
        await service.list_products(EVERYTHING, sort, PageRequest(limit=2, after=after))
    assert exc.value.errors[0] == FieldError(
        ("cursor",), "is not a cursor this API returned", parameter=True)


async def test_update_with_the_current_version_succeeds_and_bumps_it(
    service: CatalogService, make_product: MakeProduct
) -> None:
    product = await make_product("SKU-1")
    updated = await service.update_product(
        ADMIN, product.id, ProductChanges(name="Renamed", price=Money(5, "EUR")), product.version)
    assert (updated.name, updated.price, updated.version) == ("Renamed", Money(5, "EUR"), 2)
    assert await service.get_product(product.id) == updated


async def test_update_with_a_stale_version_is_refused_and_changes_nothing(
    service: CatalogService, make_product: MakeProduct
) -> None:
    product = await make_product("SKU-1")
    await service.update_product(ADMIN, product.id, ProductChanges(name="First"), 1)
    for stale in (1, frozenset({1, 7}), frozenset()):
        with pytest.raises(PreconditionFailed):
            await service.update_product(ADMIN, product.id, ProductChanges(name="Lost"), stale)
    assert (await service.get_product(product.id)).name == "First"
    assert (await service.update_product(
        ADMIN, product.id, ProductChanges(name="Any of"), frozenset({1, 2}))).version == 3


async def test_a_public_read_sees_a_write_of_this_process_at_once(
    service: CatalogService, make_product: MakeProduct
) -> None:
    product = await make_product("SKU-1")
    assert (await service.get_product(product.id)).name == product.name  # now cached
    await service.update_product(ADMIN, product.id, ProductChanges(name="Fresh"))
    assert (await service.get_product(product.id)).name == "Fresh"


async def test_a_public_read_sees_another_process_write_after_the_ttl(
    service: CatalogService, make_product: MakeProduct
) -> None:
    product = await make_product("SKU-1")
    reader = CatalogService(service._db, products=CatalogRepository, cache_ttl_seconds=0)
    assert (await reader.get_product(product.id)).name == product.name
    await service.update_product(ADMIN, product.id, ProductChanges(name="Elsewhere"))
    assert (await reader.get_product(product.id)).name == "Elsewhere"


async def test_delete_makes_the_product_not_found_for_everyone(
    service: CatalogService, make_product: MakeProduct
) -> None:
    product = await make_product("SKU-1", on_hand=5)
    with pytest.raises(PreconditionFailed):
        await service.delete_product(ADMIN, product.id, product.version + 1)
    await service.delete_product(ADMIN, product.id, product.version)
    for caller in (None, ADMIN):
        with pytest.raises(NotFound):
            await service.get_product(product.id, caller)
    with pytest.raises(NotFound):
        await service.delete_product(ADMIN, product.id)
    await make_product("SKU-1")  # the sku is free again


async def test_a_stock_count_changes_the_version_and_shows_available(
    service: CatalogService, make_product: MakeProduct
) -> None:
    product = await make_product("SKU-1")
    level = await service.set_stock(ADMIN, product.id, 12, product.version)
    assert (level.stock.on_hand, level.stock.reserved, level.stock.available) == (12, 0, 12)
    assert level.version == product.version + 1
    assert await service.get_stock(ADMIN, product.id) == level
    assert (await service.get_product(product.id)).available == 12
    with pytest.raises(PreconditionFailed):
        await service.set_stock(ADMIN, product.id, 3, product.version)


async def test_a_stock_count_below_the_reserved_units_is_refused(
    service: CatalogService, make_product: MakeProduct
) -> None:
    product = await make_product("SKU-1", on_hand=10)
    assert (await service.reserve("order-1", [(product.id, 4)])).accepted
    with pytest.raises(InvalidInput) as exc:
        await service.set_stock(ADMIN, product.id, 3)
    assert exc.value.errors[0].path == ("on_hand",)
    with pytest.raises(InvalidInput):
        await service.set_stock(ADMIN, product.id, -1)
    assert (await service.set_stock(ADMIN, product.id, 4)).stock.available == 0


async def test_get_prices_answers_existing_products_in_one_call(
    service: CatalogService, make_product: MakeProduct
) -> None:
    on_sale = await make_product("A", price=250)
    withdrawn = await make_product("B", price=990, active=False)
    prices = await service.get_prices([on_sale.id, withdrawn.id, "nope", on_sale.id])
    assert set(prices) == {on_sale.id, withdrawn.id}
    assert prices[on_sale.id].price == Money(250, "EUR")
    assert not prices[withdrawn.id].active
    assert await service.get_prices([]) == {}


async def test_the_seed_is_deterministic_broad_and_idempotent(service: CatalogService) -> None:
    assert await seed_catalog(service) == 60
    assert await seed_catalog(service) == 0
    page = await service.list_products(EVERYTHING, ProductSort.NAME, PageRequest(100, 0))
    assert page.total == 60
    assert len({product.category for product in page.items}) >= 5
    assert all(10 <= product.available <= 200 for product in page.items)
    assert {product.price.currency for product in page.items} == {"EUR"}


async def test_a_cached_list_sees_a_write_of_this_process_at_once(
    service: CatalogService, make_product: MakeProduct
) -> None:
    first = await make_product("SKU-1", name="first", on_hand=3)
    assert await names(service) == ["first"]
    await make_product("SKU-2", name="second")
    assert await names(service) == ["first", "second"]
    await service.reserve("order-1", [(first.id, 2)])
    page = await service.list_products(EVERYTHING, ProductSort.NAME, PageRequest(10, 0))
    assert page.items[0].available == 1


async def test_a_quote_sees_a_price_change_of_this_process_at_once(
    service: CatalogService, make_product: MakeProduct
) -> None:
    product = await make_product("SKU-Q1", price=1000)
    assert (await service.get_prices([product.id]))[product.id].price == Money(1000, "EUR")
    await service.update_product(ADMIN, product.id, ProductChanges(price=Money(1200, "EUR")))
    assert (await service.get_prices([product.id]))[product.id].price == Money(1200, "EUR")
    await service.update_product(ADMIN, product.id, ProductChanges(active=False))
    assert not (await service.get_prices([product.id]))[product.id].active


async def test_quotes_are_kept_across_reservations_which_only_move_stock(
    service: CatalogService, make_product: MakeProduct
) -> None:
    product = await make_product("SKU-Q2", price=1000, on_hand=5)
    quoted = await service.get_prices([product.id])
    # another process
    elsewhere = CatalogService(service._db, products=CatalogRepository, cache_ttl_seconds=0)
    await elsewhere.update_product(ADMIN, product.id, ProductChanges(price=Money(900, "EUR")))
    await service.reserve(new_id(), [(product.id, 2)])
    # The reservation did not drop the quote: this process shows the other's price within the
    # TTL, as it does for a product page.
    assert await service.get_prices([product.id]) == quoted
    assert (await elsewhere.get_prices([product.id]))[product.id].price == Money(900, "EUR")

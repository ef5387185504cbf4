"""Catalog writes: conditional updates, deletes, stock counts, admin checks — fakes and real
alike."""

from __future__ import annotations

import pytest

from archway.catalog.domain import (
    ProductChanges,
    ProductDraft,
)
from archway.kernel.errors import Forbidden, InvalidInput, NotFound, PreconditionFailed
from archway.kernel.money import Money
from tests.unit.catalog.shop import ADMIN, ADMIN_WITHOUT_SCOPE, CUSTOMER, Shop

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
    assert caught.value.errors[0].path == ("on_hand",)
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

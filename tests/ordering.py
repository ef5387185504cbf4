"""Helpers for tests of the order saga: products with stock, and bounded waits.

Outcomes of the saga are asynchronous, so tests wait for them with :func:`eventually`, which
polls up to a deadline and fails with the last value seen; no test asserts after a fixed sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from archway.catalog.domain import ProductDraft
from archway.kernel.auth.principal import Principal
from archway.kernel.money import Money
from archway.topologies.monolith import Monolith

T = TypeVar("T")

CATALOG_ADMIN = Principal(
    "catalog-admin", scopes=frozenset({"catalog:write"}), roles=frozenset({"admin"}))


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 5.0
) -> T:
    """Poll ``probe`` until ``done`` holds for its value (at most ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still not done after {timeout}s: {value!r}")
        await asyncio.sleep(0.01)


async def stocked_product(
    graph: Monolith, sku: str, *, on_hand: int, price: int = 1999, currency: str = "EUR",
    active: bool = True,
) -> str:
    """A product with ``on_hand`` units; returns its id."""
    product = await graph.catalog.create_product(CATALOG_ADMIN, ProductDraft(
        sku=sku, name=f"Product {sku}", description="", category="coffee",
        price=Money(price, currency), active=active))
    if on_hand:
        await graph.catalog.set_stock(CATALOG_ADMIN, product.id, on_hand)
    return product.id


async def stock_of(graph: Monolith, product_id: str) -> tuple[int, int]:
    """(on hand, reserved)."""
    level = await graph.catalog.get_stock(CATALOG_ADMIN, product_id)
    return level.stock.on_hand, level.stock.reserved

"""Stock reservations for orders: all or nothing, once per order, never oversold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from archway.catalog.client import InProcessCatalogClient, ReservationLine, ReservationResult
from archway.catalog.domain import Reserved
from archway.catalog.service import CatalogService
from archway.catalog.store import CatalogRepository
from archway.kernel.clock import utc_now
from archway.kernel.db import Database
from tests.integration.catalog.conftest import ADMIN, MakeProduct


async def stock_of(service: CatalogService, product_id: str) -> tuple[int, int]:
    level = await service.get_stock(ADMIN, product_id)
    return level.stock.on_hand, level.stock.reserved


async def test_a_reservation_holds_every_line_and_changes_the_versions(
    service: CatalogService, make_product: MakeProduct
) -> None:
    a = await make_product("A", on_hand=5)
    b = await make_product("B", on_hand=3)
    outcome = await service.reserve("order-1", [(a.id, 2), (b.id, 3), (a.id, 1)])
    assert (outcome.accepted, outcome.reason) == (True, None)
    assert await stock_of(service, a.id) == (5, 3)
    assert await stock_of(service, b.id) == (3, 3)
    assert (await service.get_product(a.id, ADMIN)).version == a.version + 1


async def test_a_reservation_that_cannot_be_met_holds_nothing(
    service: CatalogService, make_product: MakeProduct
) -> None:
    a = await make_product("A", on_hand=5)
    b = await make_product("B", on_hand=1)
    outcome = await service.reserve("order-1", [(a.id, 2), (b.id, 2)])
    assert not outcome.accepted
    assert outcome.reason == f"insufficient stock for {b.id}"
    assert await stock_of(service, a.id) == (5, 0)
    assert (await service.get_product(a.id, ADMIN)).version == a.version


async def test_a_reservation_of_an_unknown_or_withdrawn_product_is_rejected(
    service: CatalogService, make_product: MakeProduct
) -> None:
    withdrawn = await make_product("W", on_hand=5, active=False)
    unknown = "0190a6e5-0000-7000-8000-000000000000"
    assert (await service.reserve("o-1", [(unknown, 1)])).reason == f"unknown product {unknown}"
    assert (await service.reserve("o-2", [(withdrawn.id, 1)])).reason == (
        f"product {withdrawn.id} is no longer sold")


async def test_reserving_again_for_the_same_order_answers_the_same_and_holds_once(
    service: CatalogService, make_product: MakeProduct
) -> None:
    a = await make_product("A", on_hand=5)
    first = await service.reserve("order-1", [(a.id, 2)])
    again = await service.reserve("order-1", [(a.id, 2)])
    assert first == again
    assert await stock_of(service, a.id) == (5, 2)


async def test_a_rejected_order_stays_rejected_even_after_a_restock(
    service: CatalogService, make_product: MakeProduct
) -> None:
    a = await make_product("A", on_hand=1)
    first = await service.reserve("order-1", [(a.id, 2)])
    await service.set_stock(ADMIN, a.id, 10)
    assert await service.reserve("order-1", [(a.id, 2)]) == first
    assert await stock_of(service, a.id) == (10, 0)


async def test_release_gives_back_once(
    service: CatalogService, make_product: MakeProduct
) -> None:
    a = await make_product("A", on_hand=5)
    await service.reserve("order-1", [(a.id, 2)])
    await service.reserve("order-2", [(a.id, 1)])
    await service.release("order-1")
    await service.release("order-1")
    assert await stock_of(service, a.id) == (5, 1)
    assert (await service.reserve("order-1", [(a.id, 2)])).accepted  # replayed, not re-held
    assert await stock_of(service, a.id) == (5, 1)


async def test_a_release_that_overtakes_its_reserve_makes_it_hold_nothing(
    service: CatalogService, make_product: MakeProduct
) -> None:
    a = await make_product("A", on_hand=5)
    await service.release("order-1")
    outcome = await service.reserve("order-1", [(a.id, 2)])
    assert (outcome.accepted, outcome.reason) == (False, "the order was cancelled")
    assert await stock_of(service, a.id) == (5, 0)


async def test_release_survives_a_product_deleted_meanwhile(
    service: CatalogService, make_product: MakeProduct
) -> None:
    a = await make_product("A", on_hand=5)
    b = await make_product("B", on_hand=5)
    await service.reserve("order-1", [(a.id, 1), (b.id, 2)])
    await service.delete_product(ADMIN, a.id)
    await service.release("order-1")
    assert await stock_of(service, b.id) == (5, 0)


async def test_a_public_read_sees_a_reservation_at_once(
    service: CatalogService, make_product: MakeProduct
) -> None:
    a = await make_product("A", on_hand=5)
    assert (await service.get_product(a.id)).available == 5
    await service.reserve("order-1", [(a.id, 2)])
    assert (await service.get_product(a.id)).available == 3


async def test_the_conditional_hold_undoes_earlier_lines_when_a_later_one_falls_short(
    service: CatalogService, make_product: MakeProduct, database: Database
) -> None:
    """The statement-level guard under the domain rule: even a decision made on stale counts
    (here: one that never looked) cannot oversell, and leaves nothing half held."""
    a = await make_product("A", on_hand=5)
    b = await make_product("B", on_hand=1)
    stale = Reserved(stocks={}, quantities={a.id: 2, b.id: 3})  # a is held, then b falls short
    short = await database.write(
        lambda conn: CatalogRepository(conn).hold("order-1", stale, utc_now()))
    assert short == b.id
    assert await stock_of(service, a.id) == (5, 0)
    assert await stock_of(service, b.id) == (1, 0)
    assert (await service.reserve("order-1", [(a.id, 2)])).accepted  # nothing was recorded


@pytest.fixture
async def processes(database: Database) -> AsyncIterator[list[CatalogService]]:
    """Four services with their own engines on the same database, like four processes."""
    engines = [Database(database.url) for _ in range(4)]
    yield [CatalogService(db, products=CatalogRepository) for db in engines]
    for db in engines:
        await db.dispose()


async def test_concurrent_reservations_never_oversell(
    make_product: MakeProduct, processes: list[CatalogService], service: CatalogService
) -> None:
    scarce = await make_product("SCARCE", on_hand=5)
    plenty = await make_product("PLENTY", on_hand=1000)
    outcomes = await asyncio.gather(*(
        processes[n % len(processes)].reserve(f"order-{n}", [(plenty.id, 1), (scarce.id, 1)])
        for n in range(20)
    ))
    assert sum(outcome.accepted for outcome in outcomes) == 5
    assert await stock_of(service, scarce.id) == (5, 5)
    assert await stock_of(service, plenty.id) == (1000, 5)


async def test_concurrent_deliveries_of_one_order_hold_once_and_agree(
    make_product: MakeProduct, processes: list[CatalogService], service: CatalogService
) -> None:
    """At-least-once delivery can hand the same order to two consumers at the same moment."""
    item = await make_product("ITEM", on_hand=10)
    outcomes = await asyncio.gather(*(
        processes[n % len(processes)].reserve("order-1", [(item.id, 3)]) for n in range(8)))
    assert all(outcome.accepted for outcome in outcomes)
    assert await stock_of(service, item.id) == (10, 3)
    await asyncio.gather(*(processes[n % len(processes)].release("order-1") for n in range(8)))
    assert await stock_of(service, item.id) == (10, 0)


async def test_the_in_process_client_speaks_the_ports_types(
    service: CatalogService, make_product: MakeProduct
) -> None:
    client = InProcessCatalogClient(service)
    a = await make_product("A", price=1250, on_hand=2)
    prices = await client.get_prices([a.id])
    assert (prices[a.id].sku, prices[a.id].price.amount, prices[a.id].active) == ("A", 1250, True)
    line = ReservationLine(a.id, 2)
    assert await client.reserve("order-1", [line]) == ReservationResult("order-1", True)
    await client.release("order-1")
    assert await stock_of(service, a.id) == (2, 0)

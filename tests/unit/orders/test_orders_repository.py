"""The orders repository port, run on the real store and on its fake alike (a contract test):
whatever the service relies on, both must do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from archway.kernel.db import Database
from archway.kernel.ids import new_id
from archway.kernel.money import Money
from archway.kernel.uow import UnitsOfWork
from archway.orders.domain import LineRequest, Order, OrderStatus, Quote, place
from archway.orders.events import drain
from archway.orders.service import Orders
from archway.orders.store import OrderRepository
from tests.fakes import FakeOrders, FakeUnitsOfWork

Port = tuple[UnitsOfWork[Any], Callable[[Any], Orders]]
NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
PRODUCT = new_id()
QUOTES = {PRODUCT: Quote(PRODUCT, "A-1", "Alpha", Money(1999, "EUR"), active=True)}


@pytest.fixture(params=["fake", "real"])
def port(request: pytest.FixtureRequest, database: Database) -> Port:
    if request.param == "fake":
        return FakeUnitsOfWork(), FakeOrders
    return database, OrderRepository  # `database` empties the tables afterwards


def new_order(customer: str = "alice", quantity: int = 2) -> Order:
    return place(new_id(), customer, [LineRequest(PRODUCT, quantity)], QUOTES, NOW)


async def test_an_order_comes_back_as_it_was_added(port: Port) -> None:
    db, orders = port
    order = new_order()
    await db.write(lambda tx: orders(tx).add(order))
    assert await db.read(lambda tx: orders(tx).get(order.id)) == order
    assert await db.write(lambda tx: orders(tx).get(order.id, lock=True)) == order
    assert await db.read(lambda tx: orders(tx).get(new_id())) is None


async def test_a_write_that_raises_leaves_nothing(port: Port) -> None:
    db, orders = port
    order = new_order()

    def add_then_fail(tx: Any) -> None:
        orders(tx).add(order)
        raise RuntimeError("after the add")

    with pytest.raises(RuntimeError):
        await db.write(add_then_fail)
    assert await db.read(lambda tx: orders(tx).get(order.id)) is None


async def test_save_writes_the_state_only_at_the_version_it_was_read(port: Port) -> None:
    db, orders = port
    order = new_order()
    await db.write(lambda tx: orders(tx).add(order))
    loaded = await db.read(lambda tx: orders(tx).get(order.id))
    assert loaded is not None
    loaded.reject("insufficient stock", NOW + timedelta(seconds=1))
    # Only the state moves: a changed line is not the save's to write.
    changed = replace(loaded, lines=(replace(loaded.lines[0], quantity=9),))
    assert await db.write(lambda tx: orders(tx).save(changed, previous_version=2)) is False
    assert await db.read(lambda tx: orders(tx).get(order.id)) == order  # not saved yet
    assert await db.write(lambda tx: orders(tx).save(changed, previous_version=1)) is True
    saved = await db.read(lambda tx: orders(tx).get(order.id))
    assert saved is not None
    assert (saved.status, saved.rejection_reason, saved.version, saved.updated_at) == (
        OrderStatus.REJECTED, "insufficient stock", 2, NOW + timedelta(seconds=1))
    assert saved.lines == order.lines


async def test_a_key_names_the_order_placed_with_it_per_customer(port: Port) -> None:
    db, orders = port
    order = new_order()

    def add_with_key(tx: Any) -> None:
        orders(tx).add(order)
        orders(tx).remember_key(order, "key-1")

    assert await db.read(lambda tx: orders(tx).placed_with("alice", "key-1")) is None
    await db.write(add_with_key)
    assert await db.read(lambda tx: orders(tx).placed_with("alice", "key-1")) == order.id
    assert await db.read(lambda tx: orders(tx).placed_with("bob", "key-1")) is None
    assert await db.read(lambda tx: orders(tx).placed_with("alice", "key-2")) is None


async def test_the_last_position_is_the_newest_event_about_the_order(port: Port) -> None:
    db, orders = port
    first, second = new_order(), new_order("bob")
    assert await db.read(lambda tx: orders(tx).last_position(first.id)) == 0

    def add(order: Order) -> Callable[[Any], int]:
        def work(tx: Any) -> int:
            repo = orders(tx)
            repo.add(order)
            repo.append(drain(order))
            return repo.last_position(order.id)
        return work

    placed_first = await db.write(add(first))
    placed_second = await db.write(add(second))
    assert 0 < placed_first < placed_second

    def cancel_first(tx: Any) -> int:
        repo = orders(tx)
        order = repo.get(first.id, lock=True)
        assert order is not None and order.cancel(NOW)
        assert repo.save(order, 1)
        repo.append(drain(order))
        return repo.last_position(first.id)

    cancelled = await db.write(cancel_first)
    assert cancelled > placed_second
    assert await db.read(lambda tx: orders(tx).last_position(second.id)) == placed_second

"""Sums across orders (a customer's total spent, a product's revenue) stay exact: a sum that
would pass the BIGINT every database stores is refused, never wrapped or turned into a float
(SQLite silently makes an overflowing integer sum a REAL), whether the projection adds one
event's change (``add_to``) or a batch's (``add_all``)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from archway.kernel.db import Database
from archway.kernel.money import MAX_ACCUMULATED, MAX_AMOUNT
from archway.orders.counters import Key, SumOverflow, add_all, add_to
from archway.orders.store import customer_summary

KEY = {"customer_id": "c-1", "currency": "EUR"}
BATCH_KEY: Key = tuple(KEY.items())


async def _seed(database: Database, total_spent: int) -> None:
    await database.write(lambda conn: conn.execute(insert(customer_summary).values(
        **KEY, orders_count=1, total_spent=total_spent)))


async def _stored(database: Database) -> int:
    def read(conn: Connection) -> int:
        return int(conn.execute(select(customer_summary.c.total_spent)).scalar_one())
    return await database.read(read)


async def test_a_sum_up_to_the_largest_bigint_is_stored_exactly(database: Database) -> None:
    await _seed(database, MAX_ACCUMULATED - MAX_AMOUNT)
    await database.write(lambda conn: add_to(
        conn, customer_summary, KEY, {"orders_count": 1, "total_spent": MAX_AMOUNT}))
    assert await _stored(database) == MAX_ACCUMULATED


async def test_a_sum_past_the_largest_bigint_is_refused_and_nothing_changes(
    database: Database,
) -> None:
    await _seed(database, MAX_ACCUMULATED - MAX_AMOUNT + 1)
    with pytest.raises(SumOverflow, match="total_spent"):
        await database.write(lambda conn: add_to(
            conn, customer_summary, KEY, {"orders_count": 1, "total_spent": MAX_AMOUNT}))
    assert await _stored(database) == MAX_ACCUMULATED - MAX_AMOUNT + 1


async def test_taking_back_from_a_sum_near_the_bound_still_works(database: Database) -> None:
    await _seed(database, MAX_ACCUMULATED)
    await database.write(lambda conn: add_to(
        conn, customer_summary, KEY, {"orders_count": -1, "total_spent": -MAX_AMOUNT}))
    assert await _stored(database) == MAX_ACCUMULATED - MAX_AMOUNT


async def test_a_batch_reaching_the_largest_bigint_is_stored_exactly(database: Database) -> None:
    await _seed(database, MAX_ACCUMULATED - 2 * MAX_AMOUNT)
    await database.write(lambda conn: add_all(conn, customer_summary, [
        (BATCH_KEY, {"orders_count": 1, "total_spent": MAX_AMOUNT})] * 2))
    assert await _stored(database) == MAX_ACCUMULATED


async def test_a_batch_one_of_whose_changes_would_pass_it_is_refused_whole(
    database: Database,
) -> None:
    """Refused as that change would be alone, even though the batch's net sum would fit: the
    consumer then applies the events one by one, and only that one fails."""
    await _seed(database, MAX_ACCUMULATED - MAX_AMOUNT + 1)
    with pytest.raises(SumOverflow, match="total_spent"):
        await database.write(lambda conn: add_all(conn, customer_summary, [
            (BATCH_KEY, {"orders_count": 1, "total_spent": MAX_AMOUNT}),
            (BATCH_KEY, {"orders_count": -1, "total_spent": -MAX_AMOUNT})]))
    assert await _stored(database) == MAX_ACCUMULATED - MAX_AMOUNT + 1


async def test_a_batch_taking_back_before_adding_fits(database: Database) -> None:
    await _seed(database, MAX_ACCUMULATED)
    await database.write(lambda conn: add_all(conn, customer_summary, [
        (BATCH_KEY, {"orders_count": -1, "total_spent": -MAX_AMOUNT}),
        (BATCH_KEY, {"orders_count": 1, "total_spent": MAX_AMOUNT})]))
    assert await _stored(database) == MAX_ACCUMULATED

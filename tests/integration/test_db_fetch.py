"""Database.fetch on PostgreSQL runs on the pooled connection's driver, outside the greenlet
Core uses: the pool's guarantees must hold all the same. (That its rows are Core's rows, on
both databases, is in test_driver_write.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Float, Integer, String, bindparam, cast, func, literal_column, select

from archway.kernel.db import Database
from archway.kernel.errors import ServiceBusy
from archway.kernel.statements import DriverRead
from tests.integration.test_db_pools import postgres_url

__all__ = ["postgres_url"]  # a fixture: PostgreSQL only (SQLite's fetch is a read)

BACKEND_PID = DriverRead(select(func.pg_backend_pid()))
TRANSACTION_ID = DriverRead(select(literal_column("txid_current()", Integer)))
SLEEP = DriverRead(select(func.pg_sleep(bindparam("seconds", type_=Float))))
ECHO = DriverRead(select(bindparam("value", type_=Integer)))


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_url, pool_size=1, pool_timeout=0.5)
    yield database
    await database.dispose()


async def test_each_fetch_is_its_own_transaction_and_leaves_none_open(db: Database) -> None:
    first = (await db.fetch(TRANSACTION_ID, {}))[0][0]
    second = (await db.fetch(TRANSACTION_ID, {}))[0][0]
    assert first != second  # autocommit: no transaction is left open on the connection
    # The one connection goes back to the pool clean: a write on it is a transaction of its own.
    written = await db.write(lambda conn: conn.exec_driver_sql("SELECT txid_current()").scalar())
    assert written not in (first, second)
    assert db.pool_usage() == (0, 1)


async def test_a_connection_the_server_ended_is_service_busy_then_replaced(
    db: Database, postgres_url: str,
) -> None:
    pid = (await db.fetch(BACKEND_PID, {}))[0][0]
    killer = Database(postgres_url, pool_size=1)
    try:
        await killer.read(lambda conn: conn.exec_driver_sql(
            f"SELECT pg_terminate_backend({int(pid)})").scalar())
    finally:
        await killer.dispose()
    await asyncio.sleep(0.1)
    with pytest.raises(ServiceBusy):
        await db.fetch(ECHO, {"value": 1})
    assert (await db.fetch(ECHO, {"value": 2}))[0][0] == 2  # a new connection
    assert (await db.fetch(BACKEND_PID, {}))[0][0] != pid


async def test_a_fetch_cancelled_mid_answer_does_not_hand_its_connection_on(db: Database) -> None:
    pid = (await db.fetch(BACKEND_PID, {}))[0][0]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(db.fetch(SLEEP, {"seconds": 5.0}), 0.2)
    # The next request gets a connection in a known state, not one still sleeping.
    started = asyncio.get_running_loop().time()
    assert (await db.fetch(ECHO, {"value": 3}))[0][0] == 3
    assert asyncio.get_running_loop().time() - started < 2
    assert (await db.fetch(BACKEND_PID, {}))[0][0] != pid


async def test_a_saturated_pool_is_service_busy(db: Database) -> None:
    holding = asyncio.create_task(db.fetch(SLEEP, {"seconds": 1.5}))
    await asyncio.sleep(0.2)
    with pytest.raises(ServiceBusy):
        await db.fetch(ECHO, {"value": 4})
    await holding
    assert (await db.fetch(ECHO, {"value": 5}))[0][0] == 5


async def test_a_statements_own_error_leaves_the_connection_in_the_pool(db: Database) -> None:
    import asyncpg

    pid = (await db.fetch(BACKEND_PID, {}))[0][0]
    as_number = DriverRead(select(cast(bindparam("text", type_=String), Integer)))
    with pytest.raises(asyncpg.InvalidTextRepresentationError):
        await db.fetch(as_number, {"text": "many"})
    assert (await db.fetch(BACKEND_PID, {}))[0][0] == pid

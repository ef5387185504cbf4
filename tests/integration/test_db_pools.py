"""PostgreSQL pools: connections are kept, and the event pipeline never queues behind requests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import Connection

from archway.kernel.db import Database, writes_go_first
from archway.kernel.errors import ServiceBusy


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL pools only")
    return database_url


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_url, pool_timeout=0.5)
    yield database
    await database.dispose()


async def test_the_pool_keeps_the_connections_a_load_opened(db: Database) -> None:
    # An overflow connection is closed when returned: under the next load it is opened again.
    await asyncio.gather(*(
        db.read(lambda conn: conn.exec_driver_sql("SELECT pg_sleep(0.2)").all())
        for _ in range(20)))
    checked_out, idle = db.pool_usage()
    assert (checked_out, idle) == (0, 20)


async def test_urgent_units_get_a_connection_while_requests_hold_every_other(
    postgres_url: str,
) -> None:
    db = Database(postgres_url, pool_size=1, max_overflow=0, pool_timeout=0.5)
    try:
        holding = asyncio.create_task(
            db.read(lambda conn: conn.exec_driver_sql("SELECT pg_sleep(3)").all()))
        await asyncio.sleep(0.3)  # the only shared connection is now taken
        with pytest.raises(ServiceBusy):
            await db.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())

        async def relay_like() -> int:
            writes_go_first()
            read = await db.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar_one())
            written = await db.write(lambda conn: conn.exec_driver_sql("SELECT 2").scalar_one())
            return int(read) + int(written)

        assert await asyncio.create_task(relay_like()) == 3
        await holding
    finally:
        await db.dispose()


async def test_a_read_sends_no_begin_and_no_rollback(postgres_url: str) -> None:
    # Each statement its own transaction: one round trip for a one-query read, not three.
    def two_transaction_ids(conn: Connection) -> set[int]:
        return {conn.exec_driver_sql("SELECT txid_current()").scalar_one() for _ in range(2)}

    db = Database(postgres_url, pool_size=1)  # one connection: the write follows the read on it
    try:
        assert len(await db.read(two_transaction_ids)) == 2
        assert len(await db.write(two_transaction_ids)) == 1  # the connection is transactional
        assert len(await db.read(two_transaction_ids)) == 2
    finally:
        await db.dispose()

"""Stairway: every context's migrations go up, down and up again on an empty database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url

from archway.kernel.db import Database
from archway.kernel.migrate import downgrade, migrate
from archway.topologies.monolith import CONTEXTS


@pytest.fixture
async def empty_database(database_url: str, tmp_path) -> AsyncIterator[Database]:  # type: ignore[no-untyped-def]
    if database_url.startswith("sqlite"):
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'stairway.db'}")
        yield db
        await db.dispose()
        return
    admin = Database(database_url)
    name = f"archway_stairway_{uuid.uuid4().hex[:8]}"

    def run_outside_transaction(statement: str) -> Callable[[Connection], None]:
        def run(conn: Connection) -> None:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(statement)
        return run

    await admin.read(run_outside_transaction(f'CREATE DATABASE "{name}"'))
    db = Database(make_url(database_url).set(database=name).render_as_string(False))
    try:
        yield db
    finally:
        await db.dispose()
        await admin.read(run_outside_transaction(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def table_names(db: Database) -> set[str]:
    return set(await db.read(lambda conn: inspect(conn).get_table_names()))


async def test_migrations_go_up_down_and_up_again(empty_database: Database) -> None:
    await migrate(empty_database, CONTEXTS)
    created = await table_names(empty_database)
    assert {"identity_users", "identity_signing_keys", "idempotency_keys"} <= created
    assert any(name.startswith("catalog_") for name in created)
    await downgrade(empty_database, reversed(CONTEXTS))
    leftover = {n for n in await table_names(empty_database) if not n.startswith("alembic_version")}
    assert leftover == set()
    await migrate(empty_database, CONTEXTS)
    assert await table_names(empty_database) == created

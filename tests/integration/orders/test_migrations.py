"""The orders' migration history: up, down, up again, and in step with its tables."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from archway.kernel.db import Database
from archway.kernel.migrate import downgrade, migrate
from archway.orders.store import orders_metadata


async def test_orders_migrate_up_down_up_and_match_their_tables(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'stairway.db'}")
    try:
        await migrate(db, ["orders"])
        await downgrade(db, ["orders"])
        tables = await db.read(lambda conn: inspect(conn).get_table_names())
        assert not [name for name in tables if name.startswith("orders_")]
        await migrate(db, ["orders"])
        differences = await db.read(lambda conn: compare_metadata(
            MigrationContext.configure(conn, opts={"include_name": _orders_only}),
            orders_metadata,
        ))
        assert differences == []
    finally:
        await db.dispose()


def _orders_only(name: str | None, kind: str, _parents: object) -> bool:
    return kind != "table" or (name or "").startswith("orders_")

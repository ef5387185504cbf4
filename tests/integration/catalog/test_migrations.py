"""The catalog's migration history: up, down, up again, and in step with its tables."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from archway.catalog.store import catalog_metadata
from archway.kernel.db import Database
from archway.kernel.migrate import downgrade, migrate


async def test_catalog_migrates_up_down_up_and_matches_its_tables(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'stairway.db'}")
    try:
        await migrate(db, ["catalog"])
        await downgrade(db, ["catalog"])
        tables = await db.read(lambda conn: inspect(conn).get_table_names())
        assert not [name for name in tables if name.startswith("catalog_")]
        await migrate(db, ["catalog"])
        differences = await db.read(lambda conn: compare_metadata(
            MigrationContext.configure(conn, opts={"include_name": _catalog_only}),
            catalog_metadata,
        ))
        assert differences == []
    finally:
        await db.dispose()


def _catalog_only(name: str | None, kind: str, _parents: object) -> bool:
    return kind != "table" or (name or "").startswith("catalog_")

"""Alembic, one version history per context, run programmatically on the async engine.

Each context keeps its own script directory under ``archway/migrations/<context>`` and its own
version table, so a context can move to its own database (microservices) with its history.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from archway.kernel.db import Database

MIGRATIONS_ROOT = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(context_name: str, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_ROOT / context_name))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = f"alembic_version_{context_name}"
    return config


def run_env(metadata: MetaData) -> None:
    """The body of every context's ``env.py``: migrate on the connection we were handed."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `archway db migrate`")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=context.config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def migrate(db: Database, contexts: Iterable[str], revision: str = "head") -> None:
    for name in contexts:
        await db.write(partial(_upgrade, name, revision))


async def downgrade(db: Database, contexts: Iterable[str], revision: str = "base") -> None:
    for name in contexts:
        await db.write(partial(_downgrade, name, revision))


def _upgrade(context: str, revision: str, conn: Connection) -> None:
    command.upgrade(alembic_config(context, conn), revision)


def _downgrade(context: str, revision: str, conn: Connection) -> None:
    command.downgrade(alembic_config(context, conn), revision)


async def unapplied(db: Database, contexts: Iterable[str]) -> list[str]:
    """The contexts whose schema is not at its newest revision (checked at start-up)."""
    names = list(contexts)

    def behind(conn: Connection) -> list[str]:
        late = []
        for name in names:
            config = alembic_config(name, conn)
            head = ScriptDirectory.from_config(config).get_current_head()
            current = MigrationContext.configure(
                conn, opts={"version_table": config.attributes["version_table"]}
            ).get_current_revision()
            if current != head:
                late.append(name)
        return late

    return await db.read(behind)

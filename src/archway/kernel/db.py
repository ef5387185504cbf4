"""Async database access: one engine per process, short transactions, no blocking calls.

SQLite runs in WAL mode with a busy timeout; write transactions start with ``BEGIN IMMEDIATE``
so two writers queue on the lock instead of failing when a read lock would need upgrading, and
writers inside one process also queue on an asyncio lock so none of them holds a pooled
connection while it waits for the file lock. PostgreSQL uses asyncpg with a bounded pool.
Every request holds at most one connection at a time, so no load can deadlock the pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from archway.kernel.errors import ServiceBusy

_BEGIN_MODE = "archway_begin_mode"


class Database:
    """The process's engine plus transaction helpers; built by a composition root."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 20,
        pool_timeout: float = 30.0,
        echo: bool = False,
    ) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        options: dict[str, Any] = {"echo": echo, "pool_pre_ping": False}
        if self.is_sqlite:
            options["connect_args"] = {"timeout": 30}
            options["pool_size"] = min(pool_size, 8)
            options["max_overflow"] = max_overflow
            options["pool_timeout"] = pool_timeout
        else:
            options["pool_size"] = pool_size
            options["max_overflow"] = max_overflow
            options["pool_timeout"] = pool_timeout
            options["pool_recycle"] = 1800
        self.engine: AsyncEngine = create_async_engine(url, **options)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            _install_sqlite_pragmas(self.engine)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries; its implicit transaction is rolled back on exit."""
        try:
            async with self.engine.connect() as conn:
                yield conn
        except TimeoutError as exc:  # the pool stayed exhausted for pool_timeout seconds
            raise ServiceBusy("The database is saturated; retry shortly.") from exc

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block ends normally, else rolled back."""
        if self._write_lock is None:
            async with self._begin("DEFERRED") as conn:
                yield conn
            return
        async with self._write_lock, self._begin("IMMEDIATE") as conn:
            yield conn

    @asynccontextmanager
    async def _begin(self, mode: str) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(**{_BEGIN_MODE: mode})
                async with conn.begin():
                    yield conn
        except TimeoutError as exc:
            raise ServiceBusy("The database is saturated; retry shortly.") from exc

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except (DBAPIError, OSError, TimeoutError):
            return False
        return True

    def pool_usage(self) -> tuple[int, int]:
        """(checked out, idle) connections, for the metrics gauge."""
        pool = self.engine.pool
        checked_out = getattr(pool, "checkedout", lambda: 0)()
        idle = getattr(pool, "checkedin", lambda: 0)()
        return int(checked_out), int(idle)

    async def dispose(self) -> None:
        await self.engine.dispose()


def _install_sqlite_pragmas(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE can be emitted.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(_BEGIN_MODE, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

"""Database access: each unit of work is one synchronous function, run without blocking the loop.

A service hands :meth:`Database.read` or :meth:`Database.write` a plain function of a SQLAlchemy
``Connection``; repositories are ordinary synchronous code. How that function runs depends on
the backend, and is the whole point of this module:

* **PostgreSQL** (asyncpg): in a greenlet through ``AsyncConnection.run_sync``; every query is
  awaited natively, so nothing blocks and no thread is involved. The pool keeps every
  connection it opens (no overflow by default): an overflow connection is closed when it is
  returned, so under a load above the pool size a request would often open a connection
  (TLS attempt, startup queries, every statement prepared again). The tasks that keep events
  flowing (:func:`writes_go_first`) have a small pool of their own, so they never queue for a
  connection behind the requests: that is PostgreSQL's counterpart of SQLite's writer priority.
  Reads run in autocommit, without a transaction of their own (see :meth:`Database.read`).
* **SQLite**: on a small pool of driver threads, the *whole* unit of work in one hop, since a
  thread hop per statement (aiosqlite's way) costs several thread switches per query (figures:
  the Decisions in ``docs/architecture.md``). Writes have a single thread of
  their own, so they are serialized in-process without a lock and never wait for the file lock
  while holding a pooled connection; they start with ``BEGIN IMMEDIATE`` so that another process
  writing at the same moment makes them wait (busy timeout) instead of failing on a lock
  upgrade. Reads run without an explicit transaction (WAL: readers never block writers).

A unit of work that raises is rolled back; one that returns is committed (writes). Every request
holds at most one connection at a time, so no load can deadlock the pool. A saturated pool or a
refused or lost connection is :class:`~archway.kernel.errors.ServiceBusy` (503, ``Retry-After``).

A request can ask for a step to commit together with its first write (:func:`joining_first_write`):
the ``Idempotency-Key`` claim is taken that way, atomically with the request's first effect and
without a transaction of its own.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from archway.kernel import uow
from archway.kernel.errors import ServiceBusy
from archway.kernel.sqlite_writer import WriterThread
from archway.kernel.statements import DriverRead, Params

T = TypeVar("T")
Work = Callable[[Connection], T]

_BEGIN_MODE = "archway_begin_mode"
_SATURATED = "The database is saturated; retry shortly."
_UNAVAILABLE = "The database is unavailable; retry shortly."
_URGENT_POOL_SIZE = 2


class FirstWrite:
    """A step that runs at the start of the first write unit of the task that asked for it,
    inside that unit's transaction; :attr:`committed` tells whether that unit has committed."""

    __slots__ = ("_step", "_task", "committed")

    def __init__(self, step: Callable[[Connection], None]) -> None:
        self._step = step
        # Tasks spawned during the request copy its context; their writes are not its own.
        self._task = asyncio.current_task()
        self.committed = False

    def around(self, work: Work[T]) -> Work[T] | None:
        """``work`` preceded by the step, if the step is still due in the calling task."""
        if self.committed or asyncio.current_task() is not self._task:
            return None
        step = self._step

        def joined(conn: Connection) -> T:
            step(conn)
            return work(conn)

        return joined


_first_write: contextvars.ContextVar[FirstWrite | None] = contextvars.ContextVar(
    "archway_first_write", default=None)


@contextmanager
def joining_first_write(step: Callable[[Connection], None]) -> Iterator[FirstWrite]:
    """Within the block, the calling task's first :meth:`Database.write` runs ``step`` first,
    in the same transaction: if that unit rolls back, so does the step, and the next write
    tries again. A step that raises refuses the write."""
    joined = FirstWrite(step)
    token = _first_write.set(joined)
    try:
        yield joined
    finally:
        _first_write.reset(token)


_writes_first: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "archway_writes_first", default=False)


def writes_go_first() -> None:
    """Mark the calling task's units of work as urgent: on SQLite its writes are served before
    the queued writes of requests (see :mod:`archway.kernel.sqlite_writer`); on PostgreSQL its
    reads and writes take connections from a pool of their own. For the background tasks that
    keep events flowing, so a load of commands cannot starve the saga."""
    _writes_first.set(True)


UnitsOfWork = uow.UnitsOfWork[Connection]
"""The unit-of-work port over SQLAlchemy connections, for the kernel's own stores (events,
idempotency); :class:`Database` is the real one. Services are typed against the generic
:class:`archway.kernel.uow.UnitsOfWork`, which names no database library."""


class Database:
    """The process's database: built by a composition root, closed with :meth:`dispose`."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 30,
        max_overflow: int = 0,
        pool_timeout: float = 30.0,
        echo: bool = False,
        sqlite_read_threads: int = 2,
    ) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._async_engine: AsyncEngine | None = None
        self._urgent_engine: AsyncEngine | None = None
        self._sync_engine: Engine | None = None
        if self.is_sqlite:
            self._sync_engine = create_engine(
                parsed.set(drivername="sqlite+pysqlite"),
                echo=echo,
                pool_size=sqlite_read_threads + 1,
                max_overflow=0,
                pool_timeout=pool_timeout,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            _install_sqlite_pragmas(self._sync_engine)
            self._readers = ThreadPoolExecutor(sqlite_read_threads, "sqlite-read")
            self._writer = WriterThread("sqlite-write")
        else:
            self._async_engine = create_async_engine(
                url, echo=echo, pool_size=pool_size, max_overflow=max_overflow,
                pool_timeout=pool_timeout, pool_recycle=1800,
            )
            # Two relays (orders, catalog) each run one unit of work at a time.
            self._urgent_engine = create_async_engine(
                url, echo=echo, pool_size=_URGENT_POOL_SIZE, max_overflow=0,
                pool_timeout=pool_timeout, pool_recycle=1800,
            )

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for messages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)

    async def read(self, work: Work[T]) -> T:
        """Run ``work`` for queries only; it sees committed data."""
        if self._sync_engine is not None:
            return await self._in_thread(self._readers.submit, self._sqlite_read, work)
        with _service_state():
            async with self._engine_of_task().connect() as conn:
                # No BEGIN and no ROLLBACK around a read: two round trips out of three for a
                # one-query read. The same snapshots as a READ COMMITTED transaction, where
                # every statement takes its own anyway.
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                return await conn.run_sync(work)

    async def fetch(self, read: DriverRead, params: Params) -> list[Any]:
        """The rows of one ``SELECT`` (what ``read.all`` gives in :meth:`read`). On PostgreSQL
        the statement runs on the pooled connection's asyncpg driver, awaited natively: no
        greenlet, no Core execution, no autocommit switch. For the reads requests make most
        (a page of orders): Core's path around the driver cost twice the driver's own time
        (figures: docs/cqrs.md)."""
        if self._sync_engine is not None:
            return await self.read(lambda conn: read.all(conn, params))
        engine = self._engine_of_task()
        bound = read.bound(engine.dialect, params)
        with _service_state():
            pooled = await engine.raw_connection()
        try:
            # Outside a transaction, as read() runs: each statement takes its own snapshot.
            raw = await pooled.driver_connection.fetch(bound.sql, *bound.values)  # type: ignore[union-attr]  # asyncpg's, always there while checked out
        except _DRIVER_ERRORS as exc:
            if not _driver_lost(exc):  # the statement's own error: the connection is sound
                pooled.close()
                raise
            pooled.invalidate(exc)
            raise ServiceBusy(_UNAVAILABLE) from exc
        except BaseException as exc:
            # Cancelled mid-answer: the connection's state is unknown, so it is closed rather
            # than handed to the next request.
            pooled.invalidate(exc)
            raise
        pooled.close()
        return bound.rows(raw)

    async def write(self, work: Work[T]) -> T:
        """Run ``work`` in one transaction: committed if it returns, rolled back if it raises."""
        joined = _first_write.get()
        with_step = joined.around(work) if joined is not None else None
        if with_step is None:
            return await self._write(work)
        result = await self._write(with_step)
        joined.committed = True  # type: ignore[union-attr]
        return result

    async def _write(self, work: Work[T]) -> T:
        if self._sync_engine is not None:
            urgent = _writes_first.get()
            return await self._in_thread(
                lambda *call: self._writer.submit(urgent, *call), self._sqlite_write, work)
        with _service_state():
            async with self._engine_of_task().begin() as conn:
                return await conn.run_sync(work)

    async def ping(self) -> bool:
        try:
            await self.read(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())
        except (DBAPIError, OSError, TimeoutError, ServiceBusy):
            return False
        return True

    def pool_usage(self) -> tuple[int, int]:
        """(checked out, idle) connections, for the metrics gauge."""
        pool = self._sync_engine.pool if self._sync_engine else self._engine().pool
        checked_out = getattr(pool, "checkedout", lambda: 0)()
        idle = getattr(pool, "checkedin", lambda: 0)()
        return int(checked_out), int(idle)

    async def dispose(self) -> None:
        if self._sync_engine is not None:
            self._readers.shutdown(wait=True)
            self._writer.shutdown()
            self._sync_engine.dispose()
        if self._async_engine is not None:
            await self._async_engine.dispose()
        if self._urgent_engine is not None:
            await self._urgent_engine.dispose()

    def _engine(self) -> AsyncEngine:
        assert self._async_engine is not None
        return self._async_engine

    def _engine_of_task(self) -> AsyncEngine:
        """The urgent tasks' own pool for them (see the module), the shared one otherwise."""
        if _writes_first.get() and self._urgent_engine is not None:
            return self._urgent_engine
        return self._engine()

    async def _in_thread(
        self, submit: Callable[..., Future[T]], runner: Callable[[Work[T]], T], work: Work[T]
    ) -> T:
        # The caller's context goes along (request and trace ids), as it does in a greenlet.
        context = contextvars.copy_context()
        try:
            return await asyncio.wrap_future(submit(context.run, runner, work))
        except PoolTimeout as exc:
            raise ServiceBusy(_SATURATED) from exc

    def _sqlite_read(self, work: Work[T]) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.connect() as conn:
            return work(conn)

    def _sqlite_write(self, work: Work[T]) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.connect() as conn:
            conn = conn.execution_options(**{_BEGIN_MODE: "IMMEDIATE"})
            with conn.begin():
                return work(conn)


_UNAVAILABLE_STATES = ("08", "53", "57P01", "57P02", "57P03")
"""SQLSTATEs that say the server cannot serve now: class 08 (connection exception), class 53
(insufficient resources: too many connections, out of memory, disk full), and a server shutting
down or starting up (57P01-57P03)."""


@contextmanager
def _service_state() -> Iterator[None]:
    """A saturated pool, or a refused or lost connection, as :class:`ServiceBusy`."""
    try:
        yield
    except PoolTimeout as exc:
        raise ServiceBusy(_SATURATED) from exc
    except (OSError, DBAPIError) as exc:
        if _lost_connection(exc):
            raise ServiceBusy(_UNAVAILABLE) from exc
        raise


def _lost_connection(exc: OSError | DBAPIError) -> bool:
    """A refused or lost connection is the service's state, not a bug: a 503 the client may
    retry (with an Idempotency-Key, safely). So is a server that refuses a connection for its
    own reasons (``too many clients already``). Any other database error stays what it is."""
    if isinstance(exc, OSError) or exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    return isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES)


_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


def _driver_lost(exc: BaseException) -> bool:
    """:func:`_lost_connection` for asyncpg's own errors (:meth:`Database.fetch`)."""
    if isinstance(exc, OSError | asyncpg.ConnectionDoesNotExistError):
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        return True  # closed or in use: not a statement's fault
    state = getattr(exc, "sqlstate", None)
    return isinstance(state, str) and state.startswith(_UNAVAILABLE_STATES)


def _install_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN IMMEDIATE can be emitted.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(_BEGIN_MODE)
        if mode:  # straight to the driver: the statement needs none of SQLAlchemy's machinery
            conn.connection.dbapi_connection.execute(f"BEGIN {mode}")

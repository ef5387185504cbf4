"""Writes on the driver's cursor store exactly what Core stores, and fail as Core fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from archway.kernel.clock import as_utc
from archway.kernel.db import Database
from archway.kernel.statements import DriverWrite

WHEN = datetime(2026, 11, 25, 10, 30, 0, 250_000, tzinfo=UTC)
LATER = datetime(2026, 11, 26, 8, 0, 0, 125_000, tzinfo=UTC)


@pytest.fixture
async def things(database: Database) -> AsyncIterator[Table]:
    metadata = MetaData()
    table = Table(
        "driverwrite_things", metadata,
        Column("id", String(36), primary_key=True),
        Column("state", String(16), nullable=False),
        Column("count", Integer, nullable=False),
        Column("at", DateTime(timezone=True), nullable=True),
    )
    await database.write(lambda conn: metadata.create_all(conn))
    try:
        yield table
    finally:
        await database.write(lambda conn: metadata.drop_all(conn))


async def test_rows_written_by_the_driver_read_back_as_cores(
    database: Database, things: Table
) -> None:
    row = {"state": "new", "count": 1, "at": WHEN}
    write = DriverWrite(insert(things))

    def both(conn: object) -> None:
        conn.execute(insert(things), {"id": "core", **row})  # type: ignore[attr-defined]
        write.execute(conn, {"id": "driver", **row})  # type: ignore[arg-type]
        write.execute(conn, [{"id": "many-1", **row}, {"id": "many-2", **row}])  # type: ignore[arg-type]

    await database.write(both)
    rows = await database.read(lambda conn: conn.execute(
        select(things.c.id, things.c.state, things.c.count, things.c.at)).all())
    written = {r.id: (r.state, r.count, as_utc(r.at)) for r in rows}
    assert set(written) == {"core", "driver", "many-1", "many-2"}
    assert len(set(written.values())) == 1  # every row alike, times included


async def test_updates_count_rows_and_keep_the_values_written_into_them(
    database: Database, things: Table
) -> None:
    await database.write(lambda conn: conn.execute(insert(things), [
        {"id": "a", "state": "new", "count": 1, "at": None},
        {"id": "b", "state": "new", "count": 1, "at": None}]))
    finish = DriverWrite(update(things).where(things.c.id == bindparam("b_id")).values(
        state="done", count=things.c.count + bindparam("b_more")))

    changed = await database.write(lambda conn: [
        finish.execute(conn, {"b_id": "a", "b_more": 4}),
        finish.execute(conn, {"b_id": "nobody", "b_more": 4})])
    assert changed == [1, 0]
    rows = await database.read(lambda conn: conn.execute(
        select(things.c.id, things.c.state, things.c.count).order_by(things.c.id)).all())
    assert [tuple(r) for r in rows] == [("a", "done", 5), ("b", "new", 1)]


async def test_a_driver_error_is_raised_as_sqlalchemys(
    database: Database, things: Table
) -> None:
    write = DriverWrite(insert(things))
    row = {"id": "x", "state": "new", "count": 1, "at": None}
    await database.write(lambda conn: write.execute(conn, row))
    with pytest.raises(IntegrityError):
        await database.write(lambda conn: write.execute(conn, row))


async def test_reads_on_the_driver_answer_as_core_does(database: Database, things: Table) -> None:
    from sqlalchemy import Boolean, func, literal

    from archway.kernel.statements import DriverRead

    write = DriverWrite(insert(things))
    await database.write(lambda conn: write.execute(conn, [  # type: ignore[arg-type]
        {"id": f"t-{n}", "state": "new" if n % 2 else "old", "count": n, "at": WHEN}
        for n in range(5)]))
    queries = [
        (select(things).where(things.c.id == bindparam("b_id")), {"b_id": "t-3"}),
        (select(things).where(things.c.id.in_(bindparam("ids", expanding=True)))
         .order_by(things.c.id), {"ids": ["t-1", "t-4", "nope"]}),
        (select(things.c.id).where(things.c.id.in_(bindparam("ids", expanding=True)))
         .order_by(things.c.id), {"ids": ["t-2"]}),
        (select(func.max(things.c.count)).where(things.c.state == bindparam("b_state")),
         {"b_state": "old"}),
        (select(things.c.id, literal(True, Boolean).label("flag"))
         .where(things.c.state == "new").order_by(things.c.id), {}),
        (select(things).where(things.c.at == bindparam("b_at")).order_by(things.c.id)
         .with_for_update(), {"b_at": WHEN}),
        (select(things).where(things.c.id == bindparam("b_id")), {"b_id": "none"}),
    ]
    for statement, params in queries:
        driver = DriverRead(statement)
        core, fast, again = await database.read(lambda conn, s=statement, p=params, d=driver: (
            [tuple(row) for row in conn.execute(s, p).all()], d.all(conn, p), d.all(conn, p)))
        assert [tuple(row) for row in fast] == core == [tuple(row) for row in again], statement
        fetched = await database.fetch(driver, params)  # on PostgreSQL: the driver, awaited
        assert [tuple(row) for row in fetched] == core, statement
        if core:
            assert fetched[0]._fields == fast[0]._fields
        if core:
            assert list(fast[0]._fields) == core_keys(statement)
    first = DriverRead(queries[0][0])
    row = await database.read(lambda conn: first.first(conn, {"b_id": "t-3"}))  # type: ignore[arg-type]
    assert (row.id, row.count, as_utc(row.at)) == ("t-3", 3, WHEN)
    assert await database.read(lambda conn: first.first(conn, {"b_id": "x"})) is None  # type: ignore[arg-type]
    largest = DriverRead(queries[3][0])
    assert await database.read(lambda conn: largest.scalar(conn, {"b_state": "new"})) == 3  # type: ignore[arg-type]


def core_keys(statement: object) -> list[str]:
    return list(statement.selected_columns.keys())  # type: ignore[attr-defined]


@pytest.fixture
async def defaulted(database: Database) -> AsyncIterator[Table]:
    """A table whose columns Core fills when a statement leaves them out: Python scalars (a
    datetime, which SQLite's bind processor must still write), SQL expressions, a server
    default; on insert (``default``) and on update (``onupdate``)."""
    metadata = MetaData()
    table = Table(
        "driverwrite_defaulted", metadata,
        Column("id", String(36), primary_key=True),
        Column("state", String(16), nullable=False, default="new"),
        Column("revision", Integer, nullable=False, default=1, onupdate=2),
        Column("label", String(16), nullable=False, default=func.lower("SQL"),
               onupdate=func.upper("changed")),
        Column("kind", String(16), nullable=False, server_default="server"),
        Column("at", DateTime(timezone=True), nullable=False, default=WHEN, onupdate=LATER),
        Column("note", String(16), nullable=True),
    )
    await database.write(lambda conn: metadata.create_all(conn))
    try:
        yield table
    finally:
        await database.write(lambda conn: metadata.drop_all(conn))


async def test_column_defaults_and_onupdate_are_honoured_as_core_honours_them(
    database: Database, defaulted: Table
) -> None:
    table = defaulted
    write = DriverWrite(insert(table))
    touch = update(table).where(table.c.id == bindparam("b_id")).values(note=bindparam("b_note"))
    driver_touch = DriverWrite(touch)

    def insert_both(conn: Any) -> None:
        def by_driver(_statement: Any, params: Any) -> int:  # conn.execute's twin
            return write.execute(conn, params)

        for prefix, run in (("core", conn.execute), ("driver", by_driver)):
            run(insert(table), {"id": f"{prefix}-plain"})
            run(insert(table), [{"id": f"{prefix}-many-1"}, {"id": f"{prefix}-many-2"}])
            run(insert(table), {"id": f"{prefix}-given", "state": "given", "revision": 9})

    def update_both(conn: Any) -> None:
        conn.execute(touch, {"b_id": "core-plain", "b_note": "seen"})
        driver_touch.execute(conn, {"b_id": "driver-plain", "b_note": "seen"})
        conn.execute(touch, [{"b_id": "core-many-1", "b_note": "seen"}])
        driver_touch.execute(conn, [{"b_id": "driver-many-1", "b_note": "seen"}])

    await database.write(insert_both)
    await database.write(update_both)
    rows = await database.read(lambda conn: conn.execute(select(table)).all())
    by_source: dict[str, dict[str, tuple[Any, ...]]] = {"core": {}, "driver": {}}
    for row in rows:
        source, case = row.id.split("-", 1)
        by_source[source][case] = (row.state, row.revision, row.label, row.kind,
                                   as_utc(row.at), row.note)
    assert by_source["driver"] == by_source["core"]
    assert by_source["core"]["plain"] == ("new", 2, "CHANGED", "server", LATER, "seen")
    assert by_source["core"]["many-2"] == ("new", 1, "sql", "server", WHEN, None)
    assert by_source["core"]["given"][:2] == ("given", 9)


def counter() -> str:
    return "from-python"


@pytest.mark.parametrize(("column", "statement"), [
    (Column("made", String(16), default=counter), insert),
    (Column("made", String(16), default=lambda context: "x"), insert),
    (Column("made", String(16), onupdate=counter), update),
])
def test_a_default_it_cannot_honour_exactly_is_refused_at_construction(
    column: Column[Any], statement: Callable[[Table], Any]
) -> None:
    table = Table("driverwrite_refused", MetaData(), Column("id", String(36), primary_key=True),
                  column)
    with pytest.raises(ValueError, match=r"driverwrite_refused\.made"):
        DriverWrite(statement(table))


def test_what_it_does_not_use_is_not_refused_and_returning_is() -> None:
    table = Table("driverwrite_callables", MetaData(), Column("id", String(36), primary_key=True),
                  Column("made", String(16), default=counter))
    DriverWrite(update(table).values(id="x"))  # an insert default plays no part in an update
    DriverWrite(delete(table))
    with pytest.raises(ValueError, match="RETURNING"):
        DriverWrite(update(table).values(made="x").returning(table.c.id))


def test_a_default_core_would_run_before_the_write_is_refused_when_first_compiled() -> None:
    """A primary key's SQL default on a dialect without RETURNING: Core runs it as a statement
    of its own first; DriverWrite does not pretend to, whatever the dialect."""
    table = Table("driverwrite_prefetched", MetaData(),
                  Column("id", String(36), primary_key=True, default=func.lower("A")),
                  Column("x", String(16)))
    without_returning = sqlite.dialect()
    without_returning.insert_returning = False
    write = DriverWrite(insert(table))  # fine on a dialect that renders it inline
    with pytest.raises(ValueError, match=r"driverwrite_prefetched\.id"):
        write.execute(SimpleNamespace(dialect=without_returning), {"x": "a"})  # type: ignore[arg-type]

"""Writes on the driver's cursor store exactly what Core stores, and fail as Core fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from archway.kernel.clock import as_utc
from archway.kernel.db import Database
from archway.kernel.statements import DriverWrite

WHEN = datetime(2026, 11, 25, 10, 30, 0, 250_000, tzinfo=UTC)


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

"""Batched idempotent consumers on a real database: one transaction per batch, a failure kept
to the one event that caused it, redeliveries skipped.

Each test uses an inbox and an effect table of its own, created for it and dropped after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, insert, select
from sqlalchemy.engine import Connection

from archway.kernel.db import Database
from archway.kernel.events.bus import DeliveryFailed, InProcessBus, PartiallyHandled
from archway.kernel.events.cloudevent import Event, make_event
from archway.kernel.events.inbox import Consumer, record_new
from archway.kernel.events.tables import inbox_table

TYPE = "archway.consumertest.counted.v1"


@dataclass
class Tables:
    inbox: Table
    effects: Table


@pytest.fixture
async def tables(database: Database) -> AsyncIterator[Tables]:
    metadata = MetaData()
    made = Tables(
        inbox_table(metadata, "consumertest"),
        Table("consumertest_effects", metadata, Column("event_id", String(64), primary_key=True),
              Column("n", Integer, nullable=False)),
    )
    await database.write(lambda conn: metadata.create_all(conn))
    try:
        yield made
    finally:
        await database.write(lambda conn: metadata.drop_all(conn))


def events(count: int) -> list[Event]:
    return [make_event(TYPE, "/archway/consumertest", f"s-{i}", {"n": i}) for i in range(count)]


class Counting:
    """An effect that writes one row per event, fails on the events it is told to, and counts
    the transactions it ran in (one per ``Consumer`` call that committed)."""

    def __init__(self, tables: Tables, failing: set[int] | None = None) -> None:
        self.tables = tables
        self.failing = failing or set()
        self.committed: list[list[int]] = []

    def apply(self, conn: Connection, event: Event) -> None:
        n = event.get_data()["n"]  # type: ignore[index]
        if n in self.failing:
            raise RuntimeError(f"effect {n} failed")
        conn.execute(insert(self.tables.effects).values(event_id=event.get_id(), n=n))

    def after_commit(self, applied: object) -> None:
        self.committed.append([event.get_data()["n"] for event in applied])  # type: ignore


async def effects(database: Database, tables: Tables) -> list[int]:
    return await database.read(lambda conn: list(conn.execute(
        select(tables.effects.c.n).order_by(tables.effects.c.n)).scalars()))


async def test_a_batch_commits_once_and_a_redelivery_changes_nothing(
    database: Database, tables: Tables
) -> None:
    counting = Counting(tables)
    consumer = Consumer(database, tables.inbox, "counter", counting.apply,
                        after_commit=counting.after_commit)
    batch = events(5)
    await consumer(batch)
    await consumer(batch)  # delivered again: every event is in the inbox
    await consumer(batch[3:])
    assert await effects(database, tables) == [0, 1, 2, 3, 4]
    assert counting.committed == [[0, 1, 2, 3, 4]]  # one transaction; nothing after it


async def test_a_failing_event_keeps_those_before_it_and_names_its_index(
    database: Database, tables: Tables
) -> None:
    counting = Counting(tables, failing={2})
    consumer = Consumer(database, tables.inbox, "counter", counting.apply,
                        after_commit=counting.after_commit)
    batch = events(5)
    with pytest.raises(PartiallyHandled) as failed:
        await consumer(batch)
    assert failed.value.handled == 2
    assert await effects(database, tables) == [0, 1]  # then one at a time up to the failure
    assert counting.committed == [[0], [1]]
    counting.failing.clear()
    await consumer(batch)  # the relay delivers from the failed one again, and later ones
    assert await effects(database, tables) == [0, 1, 2, 3, 4]


async def test_the_bus_reports_the_prefix_every_consumer_handled(
    database: Database, tables: Tables
) -> None:
    bad = Counting(tables, failing={3})
    bus = InProcessBus()
    await bus.start()
    await bus.subscribe("good", [TYPE], Consumer(database, tables.inbox, "good", lambda c, e: None))
    await bus.subscribe("bad", [TYPE], Consumer(database, tables.inbox, "bad", bad.apply,
                                           after_commit=bad.after_commit))
    with pytest.raises(DeliveryFailed) as failed:
        await bus.publish(events(6))
    assert failed.value.delivered == 3
    assert await effects(database, tables) == [0, 1, 2]


async def test_recording_new_events_is_one_statement_on_postgresql_whatever_the_batch(
    database: Database, tables: Tables
) -> None:
    """On PostgreSQL the inbox itself says which events are new (``INSERT … ON CONFLICT DO
    NOTHING RETURNING``, the ids as one array): one statement, the same for every batch
    length, whose plan cannot depend on statistics. SQLite checks with an ``IN`` list, then
    inserts. Either way, only the events not seen before are recorded and returned, in order."""
    statements: list[list[str]] = []

    def new_ids(conn: Connection, batch: list[Event]) -> list[str]:
        ran: list[str] = []

        def capture(_conn: object, _cursor: object, sql: str, *_rest: object) -> None:
            ran.append(sql)

        event.listen(conn, "before_cursor_execute", capture)
        try:
            return [e.get_id() for e in record_new(conn, tables.inbox, "c", batch)]
        finally:
            event.remove(conn, "before_cursor_execute", capture)
            statements.append(ran)

    batch = events(7)
    assert await database.write(lambda conn: new_ids(conn, batch[:3])) == [
        e.get_id() for e in batch[:3]]
    assert await database.write(lambda conn: new_ids(conn, [*batch, batch[4]])) == [
        e.get_id() for e in batch[3:]]
    assert await database.write(lambda conn: new_ids(conn, batch)) == []
    recorded = await database.read(lambda conn: sorted(conn.execute(
        select(tables.inbox.c.event_id)).scalars()))
    assert recorded == sorted(e.get_id() for e in batch)
    if not database.is_sqlite:  # (SQLite's statements go to the driver's cursor unseen)
        assert [len(ran) for ran in statements] == [1, 1, 1]
        assert len({ran[0] for ran in statements}) == 1
        assert "ON CONFLICT DO NOTHING" in statements[0][0]

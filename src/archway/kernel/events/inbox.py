"""Idempotent consumers: the inbox rows and the effects commit in one transaction.

Delivery is at least once, so a consumer may see an event twice (a relay retried, a process
died after publishing but before marking). A :class:`Consumer` applies its effect only to
events its inbox has not recorded, and records them in the same ``db.write``: either both
happen or neither. Inbox rows are inserted before the effects, so on PostgreSQL a concurrent
duplicate waits on the primary key and then skips the event (or fails, on SQLite's path)
instead of running an effect a second time.

A batch is applied in **one** transaction: one commit for a hundred events instead of a
hundred. A consumer may also apply the batch's events together (``apply_batch``): a statement
per kind of change for the whole batch rather than per event, which is what keeps the saga up
with the commands on PostgreSQL, where every statement is a round trip to the server. If the
batch fails, it is applied again event by event, so that every event before the failing one
is kept and the failure points at exactly one event
(:class:`~archway.kernel.events.bus.PartiallyHandled`); the relay retries from there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache

from sqlalchemy import Table, TextClause, bindparam, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from archway.kernel.db import UnitsOfWork
from archway.kernel.events.bus import PartiallyHandled
from archway.kernel.events.cloudevent import Event, handling
from archway.kernel.statements import DriverRead, DriverWrite

Apply = Callable[[Connection, Event], object]
ApplyBatch = Callable[[Connection, Sequence[Event]], object]
"""Applies several events, in order, with the same effect as applying them one by one; it
binds each event's trace (:func:`~archway.kernel.events.cloudevent.handling`) where it emits
events or logs for that event."""


def seen(conn: Connection, inbox: Table, consumer: str, event_id: str) -> bool:
    query = select(inbox.c.event_id).where(
        inbox.c.consumer == consumer, inbox.c.event_id == event_id)
    return conn.execute(query).first() is not None


@cache
def _statements(inbox: Table) -> tuple[DriverRead, DriverWrite, TextClause]:
    """Which of some events a consumer has seen, and recording more (SQLite); recording the
    new ones and naming them in one statement (PostgreSQL). Built once per inbox."""
    seen_query = select(inbox.c.event_id).where(
        inbox.c.consumer == bindparam("consumer"),
        inbox.c.event_id.in_(bindparam("ids", expanding=True)))
    record_fresh = text(
        f"INSERT INTO {inbox.name} (consumer, event_id, event_type, processed_at) "
        "SELECT :consumer, e.id, e.type, :processed_at "
        "FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:types AS VARCHAR[])) AS e(id, type) "
        "ON CONFLICT DO NOTHING RETURNING event_id")
    return DriverRead(seen_query), DriverWrite(insert(inbox)), record_fresh


def record_new(
    conn: Connection, inbox: Table, consumer: str, events: Sequence[Event]
) -> list[Event]:
    """Insert inbox rows for the events ``consumer`` has not recorded yet; return those events,
    in order (an event twice in ``events`` counts once).

    On PostgreSQL it is one statement, ``INSERT … ON CONFLICT DO NOTHING RETURNING``: the
    primary key decides what is new, whatever the planner knows. A ``SELECT … IN (<the batch's
    ids>)`` first, as SQLite still does, is planned from the table's statistics, and without
    them (a fresh or never analyzed inbox) as a sequential scan that compares every row with
    every id: 100–230 ms per batch of 500 at 10,000 rows, against 3–9 ms once analyzed (see
    ``docs/cqrs.md``). A concurrent delivery of the same event waits on the key, then finds it
    taken and skips the event."""
    seen, record, record_fresh = _statements(inbox)
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.get_id(), event)
    now = datetime.now(UTC)
    if conn.dialect.name == "postgresql":
        inserted = set(conn.execute(record_fresh, {
            "consumer": consumer, "processed_at": now, "ids": list(unique),
            "types": [event.get_type() for event in unique.values()]}).scalars())
        return [event for event_id, event in unique.items() if event_id in inserted]
    ids = list(unique)
    known = {row.event_id for row in seen.all(conn, {"consumer": consumer, "ids": ids})}
    fresh = [event for event_id, event in unique.items() if event_id not in known]
    if fresh:
        record.execute(conn, [
            {"consumer": consumer, "event_id": event.get_id(), "event_type": event.get_type(),
             "processed_at": now} for event in fresh])
    return fresh


class Consumer:
    """A durable consumer named ``name``: applies events with ``apply`` (a function of the
    transaction's connection and one event) exactly once each, recorded in ``inbox``.

    ``after_commit`` is called with the events applied by a committed transaction (never with
    ones that were skipped as already seen): the place for nudging a relay or dropping caches.
    It is the bus handler itself: ``bus.subscribe(name, types, consumer)``.

    With ``apply_batch``, the events of a batch not seen before are handed to it all at once
    instead of to ``apply`` one by one (it must have the same effect); a failing batch is still
    narrowed to one event, each then applied by ``apply_batch`` alone.
    """

    def __init__(
        self,
        db: UnitsOfWork,
        inbox: Table,
        name: str,
        apply: Apply,
        *,
        apply_batch: ApplyBatch | None = None,
        after_commit: Callable[[Sequence[Event]], None] = lambda applied: None,
    ) -> None:
        self.name = name
        self._db = db
        self._inbox = inbox
        self._apply = apply
        self._apply_batch = apply_batch
        self._after_commit = after_commit

    async def __call__(self, events: Sequence[Event]) -> None:
        if not events:
            return
        try:
            applied = await self._db.write(lambda conn: self._apply_all(conn, events))
        except Exception:
            if len(events) == 1:
                raise
            await self._one_by_one(events)
            return
        if applied:
            self._after_commit(applied)

    async def one(self, event: Event) -> bool:
        """Apply one event in a transaction of its own; True if it was applied now (False if
        it had been already)."""
        try:
            applied = await self._db.write(lambda conn: self._apply_all(conn, [event]))
        except IntegrityError:
            # A concurrent delivery of the same event won the primary key: not an error.
            if await self._db.read(lambda conn: seen(conn, self._inbox, self.name, event.get_id())):
                return False
            raise
        if applied:
            self._after_commit(applied)
        return bool(applied)

    async def _one_by_one(self, events: Sequence[Event]) -> None:
        for index, event in enumerate(events):
            try:
                await self.one(event)
            except Exception as exc:
                raise PartiallyHandled(
                    index, f"{self.name} failed on {event.get_type()} {event.get_id()}") from exc

    def _apply_all(self, conn: Connection, events: Sequence[Event]) -> list[Event]:
        fresh = record_new(conn, self._inbox, self.name, events)
        if self._apply_batch is not None:
            if fresh:
                self._apply_batch(conn, fresh)
            return fresh
        for event in fresh:
            with handling(event):
                self._apply(conn, event)
        return fresh

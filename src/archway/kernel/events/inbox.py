"""Idempotent consumers: the inbox rows and the effects commit in one transaction.

Delivery is at least once, so a consumer may see an event twice (a relay retried, a process
died after publishing but before marking). A :class:`Consumer` applies its effect only to
events its inbox has not recorded, and records them in the same ``db.write``: either both
happen or neither. Inbox rows are inserted before the effects, so on PostgreSQL a concurrent
duplicate waits on the primary key and then fails instead of running an effect a second time.

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
from typing import Any

from sqlalchemy import Select, Table, bindparam, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from archway.kernel.db import UnitsOfWork
from archway.kernel.events.bus import PartiallyHandled
from archway.kernel.events.cloudevent import Event, handling
from archway.kernel.statements import DriverWrite

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
def _statements(inbox: Table) -> tuple[Select[Any], DriverWrite]:
    """Which of some events a consumer has seen, and recording more; built once per inbox."""
    seen_query = select(inbox.c.event_id).where(
        inbox.c.consumer == bindparam("consumer"),
        inbox.c.event_id.in_(bindparam("ids", expanding=True)))
    return seen_query, DriverWrite(insert(inbox))


def record_new(
    conn: Connection, inbox: Table, consumer: str, events: Sequence[Event]
) -> list[Event]:
    """Insert inbox rows for the events ``consumer`` has not recorded yet; return those events,
    in order (an event twice in ``events`` counts once)."""
    seen_query, record = _statements(inbox)
    ids = [event.get_id() for event in events]
    known = set(conn.execute(seen_query, {"consumer": consumer, "ids": ids}).scalars())
    fresh: list[Event] = []
    for event in events:
        if event.get_id() not in known:
            known.add(event.get_id())
            fresh.append(event)
    if fresh:
        now = datetime.now(UTC)
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

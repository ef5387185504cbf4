"""Dead letters: no single event can block a consumer.

A consumer that fails on an event is retried (the relay delivers it again, with backoff), but
only a bounded number of times: after ``max_attempts`` failures in a row the event is **parked**
for that consumer, in its context's ``<context>_dead_letters`` table with the error, and the
consumer moves on to the later events. The other consumers of the event are not concerned: each
parks only its own failures. An operator lists the parked events and retries one once its cause
is fixed (``archway events dead-letters list|retry ID``); the retry delivers it to the consumer
again, whose inbox makes the effect happen once, and removes it on success.

Failures of the infrastructure (the database unreachable or locked, a deadlock, a pool timeout)
are not the event's fault and do not count towards parking: those events wait, with the relay's
backoff, as before, and a relay failing for long makes ``/readyz`` answer 503.

Attempts are counted in memory by the process that delivers (the one holding the outbox's
lease), so a restart counts from zero again; the bound holds per process.

An outbox row that cannot even be read as an event (a corrupt payload, or one written by a
newer version of Archway) would stop its relay, and so every consumer, for good. After
``max_attempts`` failed reads (counted on the row, so across restarts) the relay parks it as a
dead letter of the pseudo-consumer ``relay:<outbox>`` in the same context's table, in the
transaction that marks it set aside, and publishes the rows after it. Retrying such a letter
puts the row back in the outbox once it reads (:class:`UnreadableEvents`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from archway.kernel.db import UnitsOfWork
from archway.kernel.events.bus import Handler, PartiallyHandled
from archway.kernel.events.cloudevent import Event, from_json, to_json
from archway.kernel.events.metrics import EventMetrics
from archway.kernel.ids import new_id

_log = logging.getLogger("archway.events.dead_letters")
_MAX_ERROR = 2000

RetryOutcome = Literal["applied", "requeued", "failed", "not_found", "no_consumer"]
"""``applied``: its consumer handled it. ``requeued``: an outbox row that now reads is back in
its outbox, for its relay. ``failed``: it failed again and stays parked. ``not_found``: no such
letter. ``no_consumer``: its consumer is not part of this version of Archway (it stays parked)."""
RELAY_PREFIX = "relay:"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    consumer: str
    event_id: str
    event_type: str
    payload: str
    attempts: int
    last_error: str
    parked_at: datetime
    last_failed_at: datetime


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:_MAX_ERROR]


def is_transient(error: BaseException) -> bool:
    """The infrastructure failed, not the event: retry without counting towards parking."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, (
        sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, ConnectionError,
        TimeoutError))


class DeadLetterStore:
    """One context's dead letters (``<context>_dead_letters``, in that context's database)."""

    def __init__(self, db: UnitsOfWork, table: Table) -> None:
        self.db = db
        self.table = table

    async def park(self, consumer: str, event: Event, error: str, attempts: int) -> str:
        """Park ``event`` for ``consumer`` (again, if it already was); returns the letter's id."""
        return await self.db.write(lambda conn: self._park(conn, consumer, event, error, attempts))

    async def is_parked(self, consumer: str, event_id: str) -> bool:
        table = self.table
        query = select(table.c.id).where(table.c.consumer == consumer,
                                         table.c.event_id == event_id)
        return await self.db.read(lambda conn: conn.execute(query).first() is not None)

    async def all(self) -> list[DeadLetter]:
        query = select(self.table).order_by(self.table.c.parked_at, self.table.c.id)
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        return [DeadLetter(**row._mapping) for row in rows]

    async def get(self, letter_id: str) -> DeadLetter | None:
        query = select(self.table).where(self.table.c.id == letter_id)
        row = await self.db.read(lambda conn: conn.execute(query).first())
        return DeadLetter(**row._mapping) if row is not None else None

    async def counts(self) -> dict[str, int]:
        """Parked events per consumer (consumers with none are absent)."""
        table = self.table
        query = select(table.c.consumer, func.count()).group_by(table.c.consumer)
        rows = await self.db.read(lambda conn: conn.execute(query).all())
        return {consumer: int(count) for consumer, count in rows}

    async def remove(self, letter_id: str) -> None:
        table = self.table
        await self.db.write(lambda conn: conn.execute(delete(table).where(table.c.id == letter_id)))

    async def failed_again(self, letter_id: str, error: str) -> None:
        table = self.table
        await self.db.write(lambda conn: conn.execute(update(table).where(
            table.c.id == letter_id).values(
                attempts=table.c.attempts + 1, last_error=error,
                last_failed_at=datetime.now(UTC))))

    def _park(
        self, conn: Connection, consumer: str, event: Event, error: str, attempts: int
    ) -> str:
        return self.park_in(conn, consumer, event.get_id(), event.get_type(),
                            to_json(event).decode(), error, attempts)

    def park_in(
        self, conn: Connection, consumer: str, event_id: str, event_type: str, payload: str,
        error: str, attempts: int,
    ) -> str:
        """Park within the caller's transaction; returns the letter's id."""
        table, now = self.table, datetime.now(UTC)
        existing = conn.execute(select(table.c.id).where(
            table.c.consumer == consumer, table.c.event_id == event_id)).scalar()
        if existing is not None:
            conn.execute(update(table).where(table.c.id == existing).values(
                attempts=table.c.attempts + attempts, last_error=error, last_failed_at=now))
            return str(existing)
        letter_id = new_id()
        conn.execute(table.insert().values(
            id=letter_id, consumer=consumer, event_id=event_id, event_type=event_type,
            payload=payload, attempts=attempts, last_error=error, parked_at=now,
            last_failed_at=now))
        return letter_id


class UnreadableEvents:
    """How one outbox's relay parks the rows it cannot read, and how a retry puts one back."""

    def __init__(self, office: DeadLetterOffice, outbox: Table, store: DeadLetterStore) -> None:
        self.office = office
        self.outbox = outbox
        self.store = store
        self.consumer = RELAY_PREFIX + outbox.name

    @property
    def max_attempts(self) -> int:
        return self.office.max_attempts

    def set_aside(
        self, conn: Connection, position: int, event_id: str, event_type: str, payload: str,
        error: str, attempts: int,
    ) -> str:
        """In the relay's marking transaction: park the row and take it out of the outbox's
        queue (published_at set, its error kept on it too)."""
        letter_id = self.store.park_in(
            conn, self.consumer, event_id, event_type, payload, error, attempts)
        outbox = self.outbox
        conn.execute(update(outbox).where(outbox.c.position == position).values(
            published_at=datetime.now(UTC), attempts=attempts, last_error=error))
        return letter_id

    def parked(self, letter_id: str, event_id: str, event_type: str, error: str) -> None:
        """Once the transaction committed: say so loudly, and count it."""
        _log.error("relay of %s set aside unreadable event %s %s (dead letter %s): %s",
                   self.outbox.name, event_type, event_id, letter_id, error)
        if self.office.metrics is not None:
            self.office.metrics.dead_lettered(self.consumer, event_type)

    async def requeue(self, letter: DeadLetter) -> RetryOutcome:
        """Put the row back in the outbox if it reads now; else it stays parked."""
        try:
            from_json(letter.payload)
        except Exception as exc:  # noqa: BLE001 - reported to the operator, kept parked
            await self.store.failed_again(letter.id, describe(exc))
            return "failed"
        outbox, table = self.outbox, self.store.table

        def put_back(conn: Connection) -> None:
            # The letter's payload, which an operator may have repaired, goes back with it.
            conn.execute(update(outbox).where(outbox.c.event_id == letter.event_id).values(
                payload=letter.payload, published_at=None, attempts=0, last_error=None))
            conn.execute(delete(table).where(table.c.id == letter.id))

        await self.store.db.write(put_back)
        _log.info("dead letter %s requeued: %s back in %s", letter.id, letter.event_id,
                  outbox.name)
        return "requeued"


class _Guarded:
    """A consumer's handler that parks an event after ``max_attempts`` failures on it.

    It blames the first event its handler did not handle: a handler of batches narrows a
    failure to one event with :class:`PartiallyHandled` (as ``inbox.Consumer`` does)."""

    def __init__(
        self, office: DeadLetterOffice, consumer: str, handler: Handler, store: DeadLetterStore
    ) -> None:
        self.office = office
        self.consumer = consumer
        self.handler = handler
        self.store = store
        self._failures: dict[str, int] = {}  # event id -> failed attempts in a row

    async def __call__(self, events: Sequence[Event]) -> None:
        done = 0
        while done < len(events):
            rest = events[done:]
            try:
                await self.handler(rest)
            except Exception as exc:  # noqa: BLE001 - counted, parked or raised again
                handled = min(exc.handled, len(rest) - 1) if isinstance(
                    exc, PartiallyHandled) else 0
                cause = exc.__cause__ if isinstance(exc, PartiallyHandled) else exc
                if not await self._parked(rest[handled], cause or exc):
                    raise PartiallyHandled(done + handled, str(exc)) from (cause or exc)
                done += handled + 1  # parked: the later events go on
                continue
            done = len(events)
        if self._failures:
            for event in events:
                self._failures.pop(event.get_id(), None)

    async def _parked(self, event: Event, error: BaseException) -> bool:
        """Count a failure on ``event``; True if it is (now, or already was) parked."""
        if is_transient(error):
            return False
        event_id = event.get_id()
        if await self.store.is_parked(self.consumer, event_id):
            return True  # delivered again after it was parked: it waits for an operator
        failures = self._failures.get(event_id, 0) + 1
        if failures < self.office.max_attempts:
            self._failures[event_id] = failures
            return False
        letter_id = await self.store.park(self.consumer, event, describe(error), failures)
        self._failures.pop(event_id, None)
        _log.error("consumer %s parked %s %s after %d failed attempts (dead letter %s): %s",
                   self.consumer, event.get_type(), event_id, failures, letter_id,
                   describe(error))
        if self.office.metrics is not None:
            self.office.metrics.dead_lettered(self.consumer, event.get_type())
        return True


class DeadLetterOffice:
    """The dead letters of every consumer of a process: guards their handlers, and lists,
    counts and retries what they parked."""

    def __init__(self, *, max_attempts: int = 5, metrics: EventMetrics | None = None) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.metrics = metrics
        self._guarded: dict[str, _Guarded] = {}
        self._unreadable: dict[str, UnreadableEvents] = {}
        self._stores: list[DeadLetterStore] = []

    def guard(self, consumer: str, handler: Handler, store: DeadLetterStore) -> Handler:
        """``handler``, parking in ``store`` what fails ``max_attempts`` times: subscribe this."""
        if consumer in self._guarded:
            raise ValueError(f"{consumer} is already guarded")
        guarded = _Guarded(self, consumer, handler, store)
        self._guarded[consumer] = guarded
        self._keep(store)
        return guarded

    def guard_outbox(self, outbox: Table, store: DeadLetterStore) -> UnreadableEvents:
        """What ``outbox``'s relay parks in ``store`` when a row cannot be read as an event."""
        unreadable = UnreadableEvents(self, outbox, store)
        if unreadable.consumer in self._unreadable:
            raise ValueError(f"{outbox.name} is already guarded")
        self._unreadable[unreadable.consumer] = unreadable
        self._keep(store)
        return unreadable

    def _keep(self, store: DeadLetterStore) -> None:
        if all(known is not store for known in self._stores):
            self._stores.append(store)

    async def parked(self) -> list[DeadLetter]:
        """Every parked event, oldest first."""
        letters = [letter for store in self._stores for letter in await store.all()]
        return sorted(letters, key=lambda letter: (letter.parked_at, letter.id))

    async def counts(self) -> dict[str, int]:
        """Parked events per consumer, every guarded consumer and relay named (0 when none)."""
        counts = dict.fromkeys([*self._guarded, *self._unreadable], 0)
        for store in self._stores:
            counts.update(await store.counts())
        return counts

    async def retry(self, letter_id: str) -> tuple[RetryOutcome, DeadLetter | None]:
        """Deliver a parked event to its consumer again. On success it is no longer parked
        (the consumer's inbox makes its effect happen once, even if it had been applied);
        on failure it stays parked with the new error. A relay's letter (an unreadable row)
        goes back to its outbox if it reads now."""
        for store in self._stores:
            letter = await store.get(letter_id)
            if letter is not None:
                break
        else:
            return "not_found", None
        unreadable = self._unreadable.get(letter.consumer)
        if unreadable is not None:
            return await unreadable.requeue(letter), await store.get(letter.id) or letter
        guarded = self._guarded.get(letter.consumer)
        if guarded is None:
            return "no_consumer", letter
        try:
            await guarded.handler([from_json(letter.payload)])
        except Exception as exc:  # noqa: BLE001 - reported to the operator, kept parked
            await store.failed_again(letter.id, describe(exc))
            return "failed", await store.get(letter.id)
        await store.remove(letter.id)
        _log.info("dead letter %s retried: %s applied by %s", letter.id, letter.event_id,
                  letter.consumer)
        return "applied", letter

    async def refresh_metrics(self) -> None:
        """Set the parked-events gauge (called at scrape time)."""
        if self.metrics is not None:
            for consumer, count in (await self.counts()).items():
                self.metrics.parked(consumer, count)

    async def readiness(self) -> dict[str, object]:
        """What ``/readyz`` reports: parked events degrade the service but leave it ready,
        since later events flow on."""
        counts = {consumer: n for consumer, n in (await self.counts()).items() if n}
        return {"status": "degraded" if counts else "ok", "parked": counts}

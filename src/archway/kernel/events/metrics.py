"""Prometheus metrics for events: what relays publish, what consumers handle, what is behind.

All of them live on the registry the caller passes in (the app's, see
:class:`~archway.kernel.observability.metrics.HttpMetrics`), never on the global one, so tests
and several apps per process each have their own.

Counters move as things happen (the relay and the bus call in). The two "how far behind" views
are read from the database at scrape time by :meth:`EventMetrics.refresh`, so serving requests
and relaying cost nothing for them:

``archway_outbox_backlog{outbox}``
    committed events no relay has published yet (``published_at IS NULL``, on the
    ``(published_at, position)`` index the relay itself reads by).
``archway_projection_lag_events{consumer}``, ``archway_projection_lag_seconds{consumer}``
    events of the types a consumer subscribes to that are in the outbox but not yet in that
    consumer's inbox, and the age of the oldest of them (0 when none). This is "committed but
    not yet applied": it includes the relay's backlog and a failing consumer. It is measured
    from the inbox because read models record no position of their own yet. Scrapes read only
    the outbox's tail above a watermark (see ``_WatchedConsumer``), so a rebuild that empties
    the inbox does not show as lag for events below it until the process restarts.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import Table, and_, exists, func, select
from sqlalchemy.engine import Connection

from archway.kernel.clock import as_utc
from archway.kernel.db import UnitsOfWork

_log = logging.getLogger(__name__)

_LATE_COMMIT_MARGIN = 1000
"""Positions re-scanned behind the newest one: on PostgreSQL an identity value taken early may
commit after later ones, and such a row must still be seen once."""


@dataclass
class _WatchedConsumer:
    db: UnitsOfWork
    consumer: str
    outbox: Table
    inbox: Table
    event_types: tuple[str, ...]
    # Every event below this position is known to be applied: later scrapes start here, so a
    # scrape costs the unapplied tail, not the whole (ever-growing) event log.
    watermark: int = field(default=0)


class EventMetrics:
    """The event metrics of one process; relays and the bus report through it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._published = Counter(
            "archway_events_published_total",
            "Events a relay handed to the bus successfully, by outbox and event type.",
            ("outbox", "type"), registry=registry)
        self._consumed = Counter(
            "archway_events_consumed_total",
            "Events a consumer handled successfully (duplicates included), by consumer and type.",
            ("consumer", "type"), registry=registry)
        self._consumer_failures = Counter(
            "archway_event_consumer_failures_total",
            "Events a consumer raised on (to be redelivered), by consumer and type.",
            ("consumer", "type"), registry=registry)
        self._relay_failures = Counter(
            "archway_outbox_relay_failures_total",
            "Failed relay attempts: a publish that raised, or an outbox it could not read or mark.",
            ("outbox",), registry=registry)
        self._held_back = Counter(
            "archway_command_backpressure_total",
            "Commands that had to wait for a relay behind its outbox, by how the wait ended "
            "(admitted, or gave_up after ARCHWAY_COMMAND_BACKPRESSURE_SECONDS).",
            ("outcome",), registry=registry)
        self._held_back_seconds = Counter(
            "archway_command_backpressure_seconds_total",
            "Time commands spent waiting for relays behind their outboxes.", registry=registry)
        for outcome in ("admitted", "gave_up"):
            self._held_back.labels(outcome)  # zero series from the start
        self._backlog = Gauge(
            "archway_outbox_backlog", "Committed events not yet published, by outbox.",
            ("outbox",), registry=registry)
        self._lag_events = Gauge(
            "archway_projection_lag_events",
            "Events committed to an outbox that a consumer has not applied yet.",
            ("consumer",), registry=registry)
        self._lag_seconds = Gauge(
            "archway_projection_lag_seconds",
            "Age of the oldest event a consumer has not applied yet (0 when caught up).",
            ("consumer",), registry=registry)
        self._dead_lettered = Counter(
            "archway_events_dead_lettered_total",
            "Events a consumer gave up on after ARCHWAY_EVENT_MAX_ATTEMPTS failures and parked "
            "as dead letters, by consumer and type.", ("consumer", "type"), registry=registry)
        self._parked = Gauge(
            "archway_events_dead_letters",
            "Events parked as dead letters now, waiting for an operator's retry, by consumer.",
            ("consumer",), registry=registry)
        self._outboxes: list[tuple[UnitsOfWork, Table]] = []
        self._consumers: list[_WatchedConsumer] = []

    # -- what happens (called by the relay and the bus) -------------------------------------

    def published(self, outbox: str, event_type: str, count: int = 1) -> None:
        self._published.labels(outbox, event_type).inc(count)

    def consumed(self, consumer: str, event_type: str, count: int = 1) -> None:
        self._consumed.labels(consumer, event_type).inc(count)

    def published_batch(self, outbox: str, event_types: Iterable[str]) -> None:
        """Count a batch in one increment per type (a batch holds up to hundreds of events)."""
        for event_type, count in Tally(event_types).items():
            self.published(outbox, event_type, count)

    def consumed_batch(self, consumer: str, event_types: Iterable[str]) -> None:
        for event_type, count in Tally(event_types).items():
            self.consumed(consumer, event_type, count)

    def consumer_failed(self, consumer: str, event_type: str) -> None:
        self._consumer_failures.labels(consumer, event_type).inc()

    def dead_lettered(self, consumer: str, event_type: str) -> None:
        self._dead_lettered.labels(consumer, event_type).inc()

    def parked(self, consumer: str, count: int) -> None:
        """How many events ``consumer`` has parked now (read at scrape time)."""
        self._parked.labels(consumer).set(count)

    def held_back(self, seconds: float, *, admitted: bool) -> None:
        """A command waited ``seconds`` for the relays (see ``Relays.keeping_up``)."""
        self._held_back.labels("admitted" if admitted else "gave_up").inc()
        self._held_back_seconds.inc(seconds)

    def relay_failed(self, outbox: str) -> None:
        self._relay_failures.labels(outbox).inc()

    # -- what is behind (read at scrape time) -------------------------------------------------

    def watch_outbox(self, db: UnitsOfWork, outbox: Table) -> None:
        """Report ``outbox``'s backlog at every scrape; watching it twice changes nothing."""
        if all(table is not outbox for _, table in self._outboxes):
            self._outboxes.append((db, outbox))
            self._relay_failures.labels(outbox.name)  # a zero series from the start
            self._backlog.labels(outbox.name).set(0)

    def watch_consumer(
        self, db: UnitsOfWork, consumer: str, outbox: Table, inbox: Table,
        event_types: Sequence[str],
    ) -> None:
        """Report how far ``consumer`` (recording what it applied in ``inbox``) trails the
        events of ``event_types`` in ``outbox``."""
        self._consumers.append(_WatchedConsumer(db, consumer, outbox, inbox, tuple(event_types)))

    async def refresh(self) -> None:
        """Read backlog and lag now; a source that cannot be read is left out of this scrape
        (absent, rather than a stale value that looks healthy)."""
        for db, outbox in self._outboxes:
            try:
                count = await db.read(partial(_backlog, outbox=outbox))
            except Exception:  # noqa: BLE001 - a scrape must not fail because a source did
                _log.warning("could not read the backlog of %s", outbox.name, exc_info=True)
                _drop(self._backlog, outbox.name)
                continue
            self._backlog.labels(outbox.name).set(count)
        for watched in self._consumers:
            try:
                behind, oldest, watermark = await watched.db.read(partial(_lag, watched=watched))
            except Exception:  # noqa: BLE001 - as above
                _log.warning("could not read the lag of %s", watched.consumer, exc_info=True)
                _drop(self._lag_events, watched.consumer)
                _drop(self._lag_seconds, watched.consumer)
                continue
            watched.watermark = max(watched.watermark, watermark)
            age = (datetime.now(UTC) - as_utc(oldest)).total_seconds() if oldest else 0.0
            self._lag_events.labels(watched.consumer).set(behind)
            self._lag_seconds.labels(watched.consumer).set(max(age, 0.0))


def _backlog(conn: Connection, outbox: Table) -> int:
    query = select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
    return int(conn.execute(query).scalar_one())


def _lag(conn: Connection, watched: _WatchedConsumer) -> tuple[int, datetime | None, int]:
    """(events not applied, creation time of the oldest, the new watermark)."""
    outbox, inbox = watched.outbox, watched.inbox
    applied = exists().where(and_(
        inbox.c.consumer == watched.consumer, inbox.c.event_id == outbox.c.event_id))
    pending = select(
        func.count(), func.min(outbox.c.created_at), func.min(outbox.c.position),
    ).where(
        outbox.c.position >= watched.watermark,
        outbox.c.event_type.in_(watched.event_types),
        ~applied,
    )
    behind, oldest, first = conn.execute(pending).one()
    newest = conn.execute(select(func.max(outbox.c.position))).scalar_one() or 0
    watermark = max(0, newest - _LATE_COMMIT_MARGIN)
    if first is not None:
        watermark = min(watermark, int(first))
    return int(behind), oldest, watermark


def _drop(gauge: Gauge, label: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(label)

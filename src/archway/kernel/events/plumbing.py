"""The event plumbing a process shares between its contexts: one bus, one set of event metrics,
one dead-letter office, and the way every context's outbox relay and guarded subscription is made.

Each context's wiring asks it for its relay and its subscriptions, so that every context (and
every process composing some of them) relays and parks the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Table

from archway.kernel.db import UnitsOfWork
from archway.kernel.events.bus import EventBus, Handler, Subscription
from archway.kernel.events.dead_letters import DeadLetterOffice, DeadLetterStore
from archway.kernel.events.lease import OutboxLease
from archway.kernel.events.metrics import EventMetrics
from archway.kernel.events.relay import OutboxRelay
from archway.kernel.events.wakeups import OutboxWakeups


@dataclass(frozen=True)
class RelayOptions:
    poll_interval: float
    batch_size: int
    max_lag: int | None
    lease_seconds: float = 15.0


@dataclass(frozen=True)
class EventPlumbing:
    db: UnitsOfWork
    bus: EventBus
    metrics: EventMetrics
    dead_letters: DeadLetterOffice
    relay_options: RelayOptions
    wakeups: OutboxWakeups | None = None  # PostgreSQL: replicas wake each other's relays

    def relay(self, outbox: Table, parked: DeadLetterStore) -> OutboxRelay:
        """The relay of one context's outbox; its lease lets replicas share the outbox, and
        the wake-ups (if any) let a replica's commits wake the relay of the one holding it. A
        row it cannot read as an event the office's ``max_attempts`` times is parked in
        ``parked`` (its context's dead letters), so that it blocks no event after it."""
        options, wakeups = self.relay_options, self.wakeups
        relay = OutboxRelay(
            self.db, outbox, self.bus, poll_interval=options.poll_interval,
            batch_size=options.batch_size,
            lease=OutboxLease(self.db, outbox.name, ttl=options.lease_seconds),
            metrics=self.metrics, max_lag=options.max_lag,
            unreadable=self.dead_letters.guard_outbox(outbox, parked),
            announce=wakeups.announcer(outbox.name) if wakeups is not None else None,
            report=wakeups.reporter(outbox.name) if wakeups is not None else None)
        if wakeups is not None:
            wakeups.watch(relay)
        return relay

    def subscription(
        self, consumer: str, event_types: Iterable[str], handler: Handler,
        parked: DeadLetterStore,
    ) -> Subscription:
        """``handler`` subscribed as ``consumer``; what fails it the office's ``max_attempts``
        times is parked in ``parked`` (its context's dead letters), so that no event blocks
        the ones after it."""
        return Subscription(
            consumer, frozenset(event_types), self.dead_letters.guard(consumer, handler, parked))

"""What every composition root of Archway builds the same way, from the settings: the
database, and the event plumbing its contexts share."""

from __future__ import annotations

from archway.config import Settings
from archway.kernel.db import Database
from archway.kernel.events.bus import EventBus, InProcessBus
from archway.kernel.events.dead_letters import DeadLetterOffice
from archway.kernel.events.metrics import EventMetrics
from archway.kernel.events.plumbing import EventPlumbing, RelayOptions
from archway.kernel.events.wakeups import OutboxWakeups

# Every migration history, in the order they are applied.
CONTEXTS = ("kernel", "identity", "catalog", "orders")


def database(settings: Settings) -> Database:
    return Database(
        settings.database_url, pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout_seconds,
        echo=settings.db_echo,
    )


def event_plumbing(
    settings: Settings, db: Database, metrics: EventMetrics, bus: EventBus | None = None
) -> EventPlumbing:
    """One bus and one dead-letter office for every context of the process: each consumer
    parks what fails it ARCHWAY_EVENT_MAX_ATTEMPTS times in its own context's dead letters."""
    return EventPlumbing(
        db=db, bus=bus or InProcessBus(metrics), metrics=metrics,
        dead_letters=DeadLetterOffice(max_attempts=settings.event_max_attempts, metrics=metrics),
        relay_options=RelayOptions(
            poll_interval=settings.outbox_poll_seconds, batch_size=settings.outbox_batch_size,
            max_lag=settings.command_backpressure_lag, lease_seconds=settings.outbox_lease_seconds),
        wakeups=OutboxWakeups(settings.database_url)
        if settings.outbox_notify and not settings.is_sqlite else None)

"""What every composition root of Archway builds the same way, from the settings: the
database, the event plumbing its contexts share, and the rate limiter of its HTTP edge."""

from __future__ import annotations

from archway.config import Settings
from archway.kernel.db import Database
from archway.kernel.events.bus import EventBus, InProcessBus
from archway.kernel.events.dead_letters import DeadLetterOffice
from archway.kernel.events.metrics import EventMetrics
from archway.kernel.events.plumbing import EventPlumbing, RelayOptions
from archway.kernel.events.wakeups import OutboxWakeups
from archway.kernel.observability.metrics import HttpMetrics
from archway.kernel.ratelimit.limiter import RateLimiter
from archway.kernel.ratelimit.policy import Plan, Plans, Quota, RouteClass

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


def rate_limiter(settings: Settings, metrics: HttpMetrics) -> RateLimiter | None:
    """The limiter the settings ask for: none (``ARCHWAY_RATE_LIMITS=off``), on Redis when
    ``ARCHWAY_REDIS_URL`` is set, else in this process's memory."""
    if not settings.rate_limits:
        return None
    window = settings.rate_limit_window_seconds
    plans = Plans(
        {plan: {cls: Quota(getattr(settings, f"rate_limit_{plan}_{cls}"), window)
                for cls in RouteClass} for plan in Plan},
        partners=frozenset(settings.rate_limit_partners))
    if settings.redis_url is None:
        return RateLimiter.in_memory(plans, metrics=metrics)
    return RateLimiter.on_redis(
        plans, settings.redis_url, fail_open=settings.rate_limit_fail_open,
        timeout_seconds=settings.redis_timeout_seconds, metrics=metrics)

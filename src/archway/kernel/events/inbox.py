"""Idempotent consumers: the inbox row and the effect commit in one transaction.

Delivery is at least once, so a consumer may see an event twice (a relay retried, a process
died after publishing but before marking). :func:`consume_once` runs the effect only for an
event id its consumer has not recorded, and records it in the same ``db.write``: either both
happen or neither. The inbox row is inserted first, so on PostgreSQL a concurrent duplicate
waits on the primary key and then fails instead of running the effect a second time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from archway.kernel.db import UnitsOfWork
from archway.kernel.events.cloudevent import Event

Effect = Callable[[Connection], object]


def seen(conn: Connection, inbox: Table, consumer: str, event_id: str) -> bool:
    query = select(inbox.c.event_id).where(
        inbox.c.consumer == consumer, inbox.c.event_id == event_id)
    return conn.execute(query).first() is not None


async def consume_once(
    db: UnitsOfWork, inbox: Table, consumer: str, event: Event, effect: Effect
) -> bool:
    """Run ``effect`` for ``event`` unless ``consumer`` already did; True if it ran now."""
    event_id = event.get_id()

    def once(conn: Connection) -> bool:
        if seen(conn, inbox, consumer, event_id):
            return False
        conn.execute(insert(inbox).values(
            consumer=consumer, event_id=event_id, event_type=event.get_type(),
            processed_at=datetime.now(UTC)))
        effect(conn)
        return True

    try:
        return await db.write(once)
    except IntegrityError:
        # A concurrent delivery of the same event won the primary key: not an error.
        if await db.read(lambda conn: seen(conn, inbox, consumer, event_id)):
            return False
        raise

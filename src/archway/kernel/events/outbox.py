"""Appending to an outbox: in the caller's transaction, never on its own.

A command calls :func:`append` inside the same ``db.write`` that changes its aggregate, so the
change and its events commit together or not at all (no dual write); a relay publishes later.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache

from sqlalchemy import Table, insert
from sqlalchemy.engine import Connection

from archway.kernel.events.cloudevent import Event, to_json
from archway.kernel.statements import DriverWrite


@cache
def _insert(outbox: Table) -> DriverWrite:
    return DriverWrite(insert(outbox))  # once per outbox: it runs for every command and reaction


def append(conn: Connection, outbox: Table, events: Iterable[Event]) -> int:
    """Write ``events`` in order; returns how many were written."""
    now = datetime.now(UTC)
    rows = [
        {
            "event_id": event.get_id(),
            "event_type": event.get_type(),
            "subject": event.get_subject() or "",
            "payload": to_json(event).decode(),
            "created_at": now,
            "published_at": None,
            "attempts": 0,
        }
        for event in events
    ]
    if rows:
        _insert(outbox).execute(conn, rows)
    return len(rows)

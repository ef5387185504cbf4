"""Outbox leases: one relay at a time publishes a given outbox.

Two processes relaying the same outbox (two monolith replicas, a relay service scaled to two)
would otherwise both read the same unpublished rows and both publish them. That is allowed by
the at-least-once contract, but it doubles the consumers' work and, worse, lets the two relays
interleave so that consumers see events out of order. A lease is one row per outbox in
``kernel_outbox_leases`` naming its holder until ``expires_at``; only the holder publishes,
the others stand by and take over once the lease expires (the holder died) or is released
(the holder stopped cleanly).

One row per outbox rather than a claim per outbox row (``FOR UPDATE SKIP LOCKED``) because
the relay publishes in ``position`` order: claiming batches in parallel would let two relays
publish a later batch before an earlier one. A lease keeps one publisher and so the order.

Taking or renewing the lease is one conditional ``UPDATE`` (or an ``INSERT`` that does nothing
on a conflict), which is atomic on PostgreSQL (row lock, re-checked predicate) and on SQLite
(writes are serialized). Holders renew when half the lease is gone, so a busy relay writes the
lease row at most every ``ttl / 2`` seconds, not once per batch.

A lease cannot make delivery exactly once: a holder that stalls for longer than ``ttl`` (a
long GC pause, a frozen VM) may still publish a batch its successor also publishes, and clocks
of different hosts may disagree by a little. Consumers stay idempotent.
"""

from __future__ import annotations

import os
import socket
import time

from sqlalchemy import delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from archway.kernel.db import UnitsOfWork
from archway.kernel.ids import new_id
from archway.kernel.tables import outbox_leases


def default_holder() -> str:
    """Unique per relay instance, readable in the table: host, process and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[-8:]}"


class OutboxLease:
    """The lease on one outbox, as seen by one would-be holder."""

    def __init__(
        self, db: UnitsOfWork, outbox: str, *, holder: str | None = None, ttl: float = 15.0
    ) -> None:
        if ttl <= 0:
            raise ValueError("a lease needs a positive ttl")
        self.outbox = outbox
        self.holder = holder or default_holder()
        self._db = db
        self._ttl_ms = int(ttl * 1000)
        self._held_until_ms = 0

    @property
    def held(self) -> bool:
        """True while this holder's lease has not expired (by the local clock)."""
        return _now_ms() < self._held_until_ms

    async def acquire(self) -> bool:
        """Take or renew the lease; True if this holder may publish now.

        Skips the database while more than half of a held lease remains.
        """
        now = _now_ms()
        if now < self._held_until_ms - self._ttl_ms // 2:
            return True
        expires = now + self._ttl_ms
        won = await self._db.write(lambda conn: self._take(conn, now, expires))
        self._held_until_ms = expires if won else 0
        return won

    async def release(self) -> None:
        """Give the lease up so that a standby relay takes over at once, not after ``ttl``."""
        self._held_until_ms = 0
        table = outbox_leases
        await self._db.write(lambda conn: conn.execute(delete(table).where(
            table.c.outbox == self.outbox, table.c.holder == self.holder)))

    def _take(self, conn: Connection, now: int, expires: int) -> bool:
        table = outbox_leases
        renewed = conn.execute(update(table).where(
            table.c.outbox == self.outbox,
            (table.c.holder == self.holder) | (table.c.expires_at < now),
        ).values(holder=self.holder, expires_at=expires))
        if renewed.rowcount:
            return True
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        created = conn.execute(dialect.insert(table).values(
            outbox=self.outbox, holder=self.holder, expires_at=expires,
        ).on_conflict_do_nothing(index_elements=[table.c.outbox]))
        return bool(created.rowcount)


def _now_ms() -> int:
    return int(time.time() * 1000)

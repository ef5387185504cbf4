"""The outbox relay: publishes committed events in order, at least once.

One relay per context outbox runs as a background task of the process (started and stopped by
the app's lifespan). It reads unpublished rows by ``position``, publishes them, and marks them
published. A command nudges it right after committing, so an event usually leaves within
milliseconds; polling every ``poll_interval`` seconds is the safety net (a nudge lost in a
crash, events written by another process).

At least once: a crash between publishing and marking publishes the batch again, and two
processes relaying the same outbox may both publish an event. Consumers are idempotent (see
:mod:`archway.kernel.events.inbox`). In order: a batch stops at the first event that fails, and
that event is retried (with backoff) before any later one is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Table, func, select, update
from sqlalchemy.engine import Connection

from archway.kernel.db import UnitsOfWork
from archway.kernel.events.bus import EventBus
from archway.kernel.events.cloudevent import from_json

_log = logging.getLogger("archway.events.relay")
_MAX_ERROR = 2000


class OutboxRelay:
    def __init__(
        self,
        db: UnitsOfWork,
        outbox: Table,
        bus: EventBus,
        *,
        batch_size: int = 100,
        poll_interval: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.name = outbox.name
        self._db = db
        self._outbox = outbox
        self._bus = bus
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._failures = 0

    def nudge(self) -> None:
        """Publish soon: called after a transaction that appended to this outbox commits."""
        self._wake.set()

    @property
    def busy(self) -> bool:
        """A batch is being read, published or marked right now."""
        return self._busy

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many events were published. Raises nothing: a
        failing event is counted on its row and stops the batch, to keep the order."""
        self._busy = True
        try:
            rows = await self._db.read(self._unpublished)
            published: list[int] = []
            try:
                for row in rows:
                    try:
                        await self._bus.publish(from_json(row.payload))
                    except Exception as exc:  # noqa: BLE001 - counted on the row, retried
                        _log.warning("publishing %s from %s failed (attempt %d)",
                                     row.event_id, self.name, row.attempts + 1)
                        await self._db.write(
                            lambda conn, row=row, exc=exc: self._failed(conn, row.position, exc))
                        self._failures += 1
                        break
                    published.append(row.position)
            finally:
                if published:
                    await self._db.write(lambda conn: self._mark_published(conn, published))
            if len(published) == len(rows):
                self._failures = 0
            return len(published)
        finally:
            self._busy = False

    async def pending(self) -> int:
        """How many events wait to be published."""
        query = select(func.count()).select_from(self._outbox).where(
            self._outbox.c.published_at.is_(None))
        return int(await self._db.read(lambda conn: conn.execute(query).scalar_one()))

    # -- the background task ---------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"relay:{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                published = await self.publish_pending()
            except Exception:  # noqa: BLE001 - the database is down, say: retry, stay alive
                _log.exception("relay %s could not read or mark its outbox", self.name)
                self._failures += 1
                published = 0
            if published >= self._batch_size:
                continue
            await self._sleep(self._delay())

    def _delay(self) -> float:
        if not self._failures:
            return self._poll_interval
        return min(self._max_backoff, 0.05 * 2 ** min(self._failures, 10))

    async def _sleep(self, seconds: float) -> None:
        """Wait for a nudge or ``seconds``; while backing off, a nudge does not cut it short."""
        if self._failures:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    # -- units of work ---------------------------------------------------------------------

    def _unpublished(self, conn: Connection) -> Sequence[object]:
        outbox = self._outbox
        query = select(
            outbox.c.position, outbox.c.event_id, outbox.c.payload, outbox.c.attempts,
        ).where(outbox.c.published_at.is_(None)).order_by(outbox.c.position).limit(
            self._batch_size)
        return conn.execute(query).all()

    def _mark_published(self, conn: Connection, positions: list[int]) -> None:
        outbox = self._outbox
        conn.execute(update(outbox).where(outbox.c.position.in_(positions)).values(
            published_at=datetime.now(UTC), attempts=outbox.c.attempts + 1, last_error=None))

    def _failed(self, conn: Connection, position: int, exc: Exception) -> None:
        outbox = self._outbox
        conn.execute(update(outbox).where(outbox.c.position == position).values(
            attempts=outbox.c.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[
                :_MAX_ERROR]))


class Relays:
    """The process's relays, started and stopped together by the app's lifespan."""

    def __init__(self, relays: Sequence[OutboxRelay]) -> None:
        self.all = tuple(relays)

    def start(self) -> None:
        for relay in self.all:
            relay.start()

    async def stop(self) -> None:
        for relay in self.all:
            await relay.stop()

    async def settle(self, timeout: float = 5.0) -> bool:
        """Wait until no relay has anything left to publish and none is publishing (twice in a
        row, since one relay's consumers write to another's outbox). For tests and shutdown."""
        deadline = time.monotonic() + timeout
        quiet_rounds = 0
        while time.monotonic() < deadline:
            quiet = True
            for relay in self.all:
                if relay.busy or await relay.pending():
                    quiet = False
                    relay.nudge()
            quiet_rounds = quiet_rounds + 1 if quiet else 0
            if quiet_rounds >= 2:
                return True
            await asyncio.sleep(0.005)
        return False

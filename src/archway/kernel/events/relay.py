"""The outbox relay: publishes committed events in order, at least once.

One relay per context outbox runs as a background task of the process (started and stopped by
the app's lifespan). It reads unpublished rows by ``position``, publishes them, and marks them
published. A command nudges it right after committing, so an event usually leaves within
milliseconds; polling every ``poll_interval`` seconds is the safety net (a nudge lost in a
crash, events written by another process).

At least once: a crash between publishing and marking publishes the batch again. Consumers are
idempotent (see :mod:`archway.kernel.events.inbox`). In order: a batch stops at the first event
that fails, and that event is retried (with backoff) before any later one is published. With an
:class:`~archway.kernel.events.lease.OutboxLease`, of several processes relaying one outbox only
the lease holder publishes, so routine duplicates and interleaving are avoided; a standby relay
that is nudged calls its ``announce`` instead (on PostgreSQL a ``NOTIFY`` that wakes the holder's
process, see :mod:`archway.kernel.events.wakeups`), so a commit in any process is relayed at once.

Its :meth:`OutboxRelay.state` is what ``/readyz`` reports: a loop that died, or a relay that has
failed without a single success for longer than ``failing_after`` seconds, is not ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Table, func, select, update
from sqlalchemy.engine import Connection, Row

from archway.kernel.db import UnitsOfWork, writes_go_first
from archway.kernel.events.bus import DeliveryFailed, EventBus
from archway.kernel.events.cloudevent import Event, from_json
from archway.kernel.events.dead_letters import UnreadableEvents, describe
from archway.kernel.events.lease import OutboxLease
from archway.kernel.events.metrics import EventMetrics

_log = logging.getLogger("archway.events.relay")
_Row = Row[*tuple[Any, ...]]  # an outbox row, whichever columns it has
_MAX_ERROR = 2000

RelayState = Literal["stopped", "running", "standby", "retrying", "failing", "dead"]
"""``stopped``: not started (or stopped). ``running``: publishing, or nothing to publish.
``standby``: another process holds the outbox lease. ``retrying``: failing, for less than
``failing_after`` seconds. ``failing``: failing for longer. ``dead``: the loop ended by itself."""

_UNREADY: frozenset[RelayState] = frozenset({"failing", "dead"})


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
        lease: OutboxLease | None = None,
        metrics: EventMetrics | None = None,
        failing_after: float = 30.0,
        max_lag: int | None = None,
        unreadable: UnreadableEvents | None = None,
        announce: Callable[[], None] | None = None,
        report: Callable[[int], None] | None = None,
    ) -> None:
        self.name = outbox.name
        self.context = outbox.name.removesuffix("_outbox")
        self._db = db
        self._outbox = outbox
        self._bus = bus
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._keeping_up = True
        self._admissions = 0  # commands still admitted before the next batch, while behind
        self._max_lag = max_lag if max_lag is not None else batch_size
        self._lag = 0  # committed, not yet handled by every consumer, as last known
        self._commits = 0  # nudges so far: commits that appended to this outbox
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._failures = 0
        self._failing_since: float | None = None
        self._standby = False
        self._lease = lease
        self._metrics = metrics
        self._failing_after = failing_after
        self._unreadable = unreadable
        self._announce = announce
        self._report = report
        self._reported_behind = False  # the last report said behind: the next says when not
        self._heard_at: float | None = None  # a standby: when the holder last reported
        self._pacing: set[asyncio.Task[None]] = set()
        if metrics is not None:
            metrics.watch_outbox(db, outbox)

    def nudge(self) -> None:
        """Publish soon: called after a transaction that appended to this outbox commits."""
        self._commits += 1
        self._lag += 1  # at least one event; the next read counts them exactly
        if self._lag > self._max_lag and self._paces_commands():
            self._keeping_up = False
        if self._standby and self._announce is not None:
            self._announce()  # the holder is another process: tell it (see wakeups.py)
        self._wake.set()

    def wake(self) -> None:
        """Publish soon: another process committed to this outbox and announced it. Unlike
        :meth:`nudge` it counts no commit of this process (the next read counts the lag)."""
        self._wake.set()

    def heard(self, lag: int) -> None:
        """The holder (another process) reports its lag after a batch while it is behind, and
        once more when it no longer is. A standby paces its own commands by it, as the
        holder paces its: each report while behind lets a quarter batch in. A report older
        than two poll intervals no longer counts (the holder may have died)."""
        if not self._standby:
            return
        self._heard_at = time.monotonic()
        self._lag = lag
        task = asyncio.get_running_loop().create_task(self._paced())
        self._pacing.add(task)
        task.add_done_callback(self._pacing.discard)

    @property
    def lag(self) -> int:
        """Events committed to this outbox and not yet handled by every consumer, as this
        relay knows them without any I/O: the backlog its last read found (past a full batch,
        up to the newest position), less what it delivered since, plus one per commit since
        (nudges), plus what the bus has published and its consumers not yet handled."""
        return self._lag + self._bus.pending()

    @property
    def keeping_up(self) -> bool:
        """False while :attr:`lag` is above ``max_lag`` (and the relay publishes: a failing or
        standing-by relay would not catch up sooner for commands waiting)."""
        return self._keeping_up

    async def admit(self) -> None:
        """Wait until this relay keeps up, or until a batch it published while behind lets
        this command in: each such batch admits a quarter of a batch's worth of commands, so
        commands go on at the pace the consumers set instead of stopping in turns."""
        async with self._progress:
            await self._progress.wait_for(self._admitted)

    def _admitted(self) -> bool:
        if self._keeping_up:
            return True
        if self._admissions > 0:
            self._admissions -= 1
            return True
        return False

    def _paces_commands(self) -> bool:
        if self._task is None or self._failures:
            return False
        return not self._standby or self._heard_recently()

    def _heard_recently(self) -> bool:
        heard_at = self._heard_at
        return heard_at is not None and time.monotonic() - heard_at < 2 * self._poll_interval

    async def _paced(self, *, admits: bool = True) -> None:
        """After each attempt: behind or not, by the lag; a batch published while behind (or,
        on a standby, each lag the holder reports) lets a quarter batch of commands in."""
        behind = self.lag > self._max_lag and self._paces_commands()
        self._keeping_up = not behind
        if not behind:
            self._admissions = 0
        elif admits:
            self._admissions = max(1, self._batch_size // 4)
        if self._report is not None and not self._standby and (behind or self._reported_behind):
            self._report(self.lag)  # to the standbys, which pace their commands by it
            self._reported_behind = behind
        async with self._progress:
            self._progress.notify_all()

    @property
    def busy(self) -> bool:
        """A batch is being read, published or marked right now."""
        return self._busy

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many events were published. A failing publish is
        counted on its row and stops the batch, to keep the order; only the database failing
        (reading the lease, the rows or marking them) raises."""
        self._busy = True
        try:
            if self._lease is not None and not await self._lease.acquire():
                # Standing by is healthy: another process publishes (its own readiness
                # says how well), so any failure of ours from before no longer counts.
                self._standby = True
                self._failures = 0
                self._failing_since = None
                if not self._heard_recently():
                    self._lag = 0  # nothing known of the holder's lag: nobody waits
                return 0
            self._standby = False
            commits_before = self._commits
            rows, backlog = await self._db.read(self._unpublished)
            self._lag = backlog + self._commits - commits_before
            if self._lease is not None and not self._lease.held:
                return 0  # stalled past the lease: leave the rows to whoever holds it now
            events, unreadable = _parsed(rows)
            failure: BaseException | None = unreadable
            delivered = len(events)
            if events:
                try:
                    await self._bus.publish(events)
                except DeliveryFailed as exc:
                    delivered, failure = exc.delivered, exc
                except Exception as exc:  # noqa: BLE001 - counted on the row, retried
                    delivered, failure = 0, exc
            published = [row.position for row in rows[:delivered]]
            self._lag = max(0, self._lag - delivered)
            failed = rows[delivered] if failure is not None else None
            if failed is not None:
                _log.warning("publishing %s from %s failed (attempt %d): %s", failed.event_id,
                             self.name, failed.attempts + 1, failure)
            set_aside = self._unreadable if (
                failed is not None and failure is unreadable and self._unreadable is not None
                and failed.attempts + 1 >= self._unreadable.max_attempts) else None
            if published or failed is not None:
                letter_id = await self._db.write(
                    lambda conn: self._mark(conn, published, failed, failure, set_aside))
            if self._metrics is not None:
                self._metrics.published_batch(
                    self.name, [row.event_type for row in rows[:delivered]])
            if set_aside is not None and failed is not None and letter_id is not None:
                set_aside.parked(letter_id, failed.event_id, failed.event_type, describe(
                    failure or ValueError("unreadable")))
                failed = None  # parked: the rows after it go on at once
                self._wake.set()
            if failed is None or published:
                # Progress restarts the backoff: the failing event is another one than before
                # (the one before it went through, or was parked by its consumer).
                self._failures = 0
                self._failing_since = None
            if failed is not None:
                self._failed_once()
            return len(published)
        finally:
            self._busy = False

    async def pending(self) -> int:
        """How many events wait to be published."""
        query = select(func.count()).select_from(self._outbox).where(
            self._outbox.c.published_at.is_(None))
        return int(await self._db.read(lambda conn: conn.execute(query).scalar_one()))

    def state(self) -> RelayState:
        """Where the relay stands now (see :data:`RelayState`)."""
        task = self._task
        if task is None:
            return "stopped"
        if task.done():
            return "dead"
        if self._failing_since is not None:
            failing_for = time.monotonic() - self._failing_since
            return "failing" if failing_for > self._failing_after else "retrying"
        return "standby" if self._standby else "running"

    async def ready(self) -> bool:
        """The readiness check: neither dead nor failing for longer than ``failing_after``."""
        return self.state() not in _UNREADY

    # -- the background task ---------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"relay:{self.name}")
            self._task.add_done_callback(self._ended)

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._lag = 0
        await self._paced()  # nobody waits for a relay that stopped
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._lease is not None and self._lease.held:
            try:
                await self._lease.release()
            except Exception:  # noqa: BLE001 - the lease expires by itself anyway
                _log.warning("relay %s could not release its lease", self.name, exc_info=True)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The loop never ends by itself: if it did, say so loudly (``state`` says "dead")."""
        if task.cancelled():
            return
        exc = task.exception()
        _log.error("relay %s stopped running", self.name, exc_info=exc)

    def _failed_once(self) -> None:
        self._failures += 1
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        if self._metrics is not None:
            self._metrics.relay_failed(self.name)

    async def _run(self) -> None:
        writes_go_first()  # this task's own context: only the relay and its consumers
        while True:
            self._wake.clear()
            try:
                published = await self.publish_pending()
            except Exception:  # noqa: BLE001 - the database is down, say: retry, stay alive
                _log.exception("relay %s could not read or mark its outbox", self.name)
                self._failed_once()
                published = 0
            await self._paced(admits=not self._standby)  # a standby admits on reports only
            if published >= self._batch_size:
                continue
            await self._sleep(self._delay())

    @property
    def delay(self) -> float:
        """How long the loop waits after an attempt that published less than a full batch:
        ``poll_interval``, or the backoff while failing."""
        return self._delay()

    def _delay(self) -> float:
        if not self._failures:
            return self._poll_interval
        doubling: int = 2 ** min(self._failures, 10)  # an int: the exponent is not negative
        return min(self._max_backoff, 0.05 * doubling)

    async def _sleep(self, seconds: float) -> None:
        """Wait for a nudge or ``seconds``. While backing off, a nudge does not cut it short;
        nor while standing by, where it would only cost a lease attempt (a database write) per
        commit of this process: a standby looks again every ``poll_interval``."""
        if self._failures or self._standby:
            await asyncio.sleep(seconds)
            return
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation (stop) that
        # arrives as the nudge lands, and the loop would sleep a whole poll interval more.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    # -- units of work ---------------------------------------------------------------------

    def _unpublished(self, conn: Connection) -> tuple[Sequence[_Row], int]:
        """The next batch, and how many events wait (a full batch and all after it, by
        position: one look at the primary key's end, only when the batch is full)."""
        outbox = self._outbox
        query = select(
            outbox.c.position, outbox.c.event_id, outbox.c.event_type, outbox.c.payload,
            outbox.c.attempts,
        ).where(outbox.c.published_at.is_(None)).order_by(outbox.c.position).limit(
            self._batch_size)
        rows = conn.execute(query).all()
        if len(rows) < self._batch_size:
            return rows, len(rows)
        newest = conn.execute(select(func.max(outbox.c.position))).scalar_one()
        return rows, max(len(rows), int(newest) - rows[0].position + 1)

    def _mark(
        self, conn: Connection, published: list[int], failed: _Row | None,
        failure: BaseException | None, set_aside: UnreadableEvents | None,
    ) -> str | None:
        """One transaction for a batch: what went out is published, the event that failed
        (if one did) has its attempt and error counted, or, unreadable once too often, is
        parked (returns the dead letter's id)."""
        outbox = self._outbox
        if published:
            conn.execute(update(outbox).where(outbox.c.position.in_(published)).values(
                published_at=datetime.now(UTC), attempts=outbox.c.attempts + 1,
                last_error=None))
        if failed is None:
            return None
        error = f"{type(failure).__name__}: {failure}"[:_MAX_ERROR]
        if set_aside is not None:
            return set_aside.set_aside(
                conn, failed.position, failed.event_id, failed.event_type, str(failed.payload),
                error, failed.attempts + 1)
        conn.execute(update(outbox).where(outbox.c.position == failed.position).values(
            attempts=outbox.c.attempts + 1, last_error=error))
        return None


def _parsed(rows: Sequence[_Row]) -> tuple[list[Event], Exception | None]:
    """The rows' events, up to the first one that cannot be read (and why it cannot)."""
    events: list[Event] = []
    for row in rows:
        try:
            events.append(from_json(row.payload))
        except Exception as exc:  # noqa: BLE001 - a corrupt row is counted and retried
            return events, exc
    return events, None

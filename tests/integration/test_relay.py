"""The outbox relay on a real database: failures, backoff, recovery, order, leasing, health.

Each test uses an outbox of its own (see :mod:`tests.relaying`), never the app's.
"""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from archway.kernel.db import Database
from archway.kernel.events.lease import OutboxLease
from archway.kernel.events.metrics import EventMetrics
from archway.kernel.events.relay import OutboxRelay, RelayState
from archway.kernel.events.relays import Relays
from tests.ordering import eventually
from tests.relaying import FlakyBus, PublishOnlyBus, private_outbox, write_events

T = TypeVar("T")


@pytest.fixture
async def outbox(database: Database) -> AsyncIterator[Table]:
    async with private_outbox(database) as table:
        yield table

def rows(outbox: Table) -> Callable[[Connection], list[tuple[str, object, int, str | None]]]:
    def read(conn: Connection) -> list[tuple[str, object, int, str | None]]:
        query = select(outbox.c.event_id, outbox.c.published_at, outbox.c.attempts,
                       outbox.c.last_error).order_by(outbox.c.position)
        return [tuple(row) for row in conn.execute(query).all()]  # type: ignore[misc]
    return read


async def test_a_failing_publish_keeps_the_row_counts_it_and_retries_in_order(
    database: Database, outbox: Table
) -> None:
    bus = FlakyBus()
    relay = OutboxRelay(database, outbox, bus, max_backoff=0.2)  # type: ignore[arg-type]
    ids = await write_events(database, outbox, 3)
    bus.broken = True
    assert await relay.publish_pending() == 0
    assert await relay.publish_pending() == 0
    first, second, third = await database.read(rows(outbox))
    assert first[1] is None and first[2] == 2  # kept, both attempts counted on it
    assert first[3] == "ConnectionError: the bus is down"
    assert second[2] == third[2] == 0  # the batch stopped at the first failure: order kept
    assert relay.delay == pytest.approx(0.2)  # backing off, capped by max_backoff
    assert relay.state() == "stopped" and await relay.pending() == 3

    bus.broken = False
    assert await relay.publish_pending() == 3
    assert bus.published == ids
    assert all(row[1] is not None and row[3] is None for row in await database.read(rows(outbox)))
    assert relay.delay == 1.0  # the backoff is over: the poll interval again
    assert await relay.pending() == 0


async def test_the_running_relay_backs_off_then_catches_up_when_the_bus_recovers(
    database: Database, outbox: Table
) -> None:
    bus = FlakyBus()
    metrics = EventMetrics(CollectorRegistry())
    relay = OutboxRelay(database, outbox, bus, poll_interval=0.01, max_backoff=0.05,  # type: ignore[arg-type]
                        failing_after=0.1, metrics=metrics)
    bus.broken = True
    ids = await write_events(database, outbox, 2)
    relay.start()
    try:
        await eventually(lambda: _attempts(database, outbox), lambda n: n >= 3)
        assert relay.state() in ("retrying", "failing")
        await eventually(_state(relay), lambda state: state == "failing")
        assert not await relay.ready()
        bus.broken = False
        await eventually(relay.pending, lambda n: n == 0)
        assert bus.published == ids
        # The rows are marked a moment before the relay notes its success: wait for it.
        await eventually(_state(relay), lambda state: state == "running")
        assert await relay.ready()
    finally:
        await relay.stop()
    assert relay.state() == "stopped"


async def test_two_relays_on_one_outbox_publish_each_event_once_in_order(
    database: Database, outbox: Table
) -> None:
    bus = FlakyBus()
    relays = [
        OutboxRelay(database, outbox, bus, batch_size=7, poll_interval=0.01,  # type: ignore[arg-type]
                    lease=OutboxLease(database, outbox.name, holder=f"relay-{n}", ttl=5))
        for n in (1, 2)
    ]
    for relay in relays:
        relay.start()
    try:
        ids: list[str] = []
        for _ in range(6):
            ids += await write_events(database, outbox, 5)
            for relay in relays:
                relay.nudge()
            await asyncio.sleep(0.005)
        await eventually(relays[0].pending, lambda n: n == 0)
        assert bus.published == ids  # once each, in order
        assert sorted(relay.state() for relay in relays) == ["running", "standby"]

        # The holder stops (and releases): the other takes over at once.
        holder, standby = relays if relays[0].state() == "running" else relays[::-1]
        await holder.stop()
        more = await write_events(database, outbox, 3)
        standby.nudge()
        await eventually(standby.pending, lambda n: n == 0)
        assert bus.published == ids + more
        assert standby.state() == "running"
    finally:
        for relay in relays:
            await relay.stop()


async def test_a_lease_expires_so_a_standby_takes_over_from_a_dead_holder(
    database: Database, outbox: Table
) -> None:
    dead = OutboxLease(database, outbox.name, holder="dead", ttl=0.05)
    alive = OutboxLease(database, outbox.name, holder="alive", ttl=5)
    assert await dead.acquire()
    assert not await alive.acquire()
    await asyncio.sleep(0.06)
    assert await alive.acquire()
    assert not await dead.acquire()
    assert await alive.acquire()  # renewing is cheap and keeps it
    await alive.release()
    assert await dead.acquire()
    await dead.release()


async def test_a_relay_whose_loop_died_is_dead(database: Database, outbox: Table) -> None:
    relay = OutboxRelay(database, outbox, FlakyBus(), poll_interval=10)  # type: ignore[arg-type]
    relay.start()
    await asyncio.sleep(0)
    await eventually(_busy(relay), lambda busy: not busy)  # asleep between polls, not mid-query
    assert relay._task is not None
    relay._task.cancel()  # something other than stop() ended the loop
    with pytest.raises(asyncio.CancelledError):
        await relay._task
    assert relay.state() == "dead" and not await relay.ready()
    await relay.stop()


def _state(relay: OutboxRelay) -> Callable[[], Awaitable[RelayState]]:
    async def state() -> RelayState:
        return relay.state()
    return state


def _busy(relay: OutboxRelay) -> Callable[[], Awaitable[bool]]:
    async def busy() -> bool:
        return relay.busy
    return busy


async def _attempts(db: Database, outbox: Table) -> int:
    return max(row[2] for row in await db.read(rows(outbox)))


class OneBatchAtATime(PublishOnlyBus):
    """A bus that delivers one batch each time it is let through, then holds the next."""

    def __init__(self) -> None:
        self.through = asyncio.Event()
        self.always = False
        self.batches: list[int] = []
        self.held: list[int] = []  # the sizes of the batches it was handed, held or not

    async def publish(self, events: list[object]) -> None:
        self.held.append(len(events))
        await self.through.wait()
        if not self.always:
            self.through.clear()
        self.batches.append(len(events))


async def test_a_relay_behind_its_outbox_admits_commands_at_its_own_pace(
    database: Database, outbox: Table
) -> None:
    bus = OneBatchAtATime()
    relay = OutboxRelay(database, outbox, bus, batch_size=2, poll_interval=0.01)  # type: ignore[arg-type]
    relays = Relays([relay])
    await write_events(database, outbox, 5)
    assert relay.keeping_up and await relays.keeping_up(0.01)
    relay.start()
    try:
        bus.through.set()  # one full batch goes out; the next is held
        await eventually(lambda: _value(relay.keeping_up), lambda keeping_up: not keeping_up)
        # The full batch admits a quarter batch of commands (here one); the next one waits,
        # and would give up waiting (and go on) after its timeout.
        assert await relays.keeping_up(0.05)
        assert not await relays.keeping_up(0.05)
        waiting = asyncio.create_task(relays.keeping_up(5.0))
        await asyncio.sleep(0.02)
        assert not waiting.done()
        bus.always = True
        bus.through.set()
        assert await waiting  # let in by the next batch
        # The second batch left one event behind, within max_lag (the batch size): it keeps up.
        await eventually(lambda: _value(relay.keeping_up), lambda keeping_up: keeping_up)
        await eventually(lambda: _value(bus.batches), lambda batches: batches == [2, 2, 1])
        assert await relays.keeping_up(0.01) and await relays.keeping_up(0.01)
    finally:
        await relays.stop()


async def test_backpressure_reads_the_lag_not_whether_the_last_batch_was_full(
    database: Database, outbox: Table
) -> None:
    bus = OneBatchAtATime()
    # Only nudges wake it (no polling), so that it reads exactly when the test says.
    relay = OutboxRelay(database, outbox, bus, batch_size=2, poll_interval=30,  # type: ignore[arg-type]
                        max_lag=3)

    async def nudged_pending() -> int:
        relay.nudge()
        return await relay.pending()

    relays = Relays([relay])
    await write_events(database, outbox, 2)
    relay.start()
    try:
        bus.through.set()  # a full batch that empties the outbox: nothing lags behind
        await eventually(lambda: _value(bus.batches), lambda batches: batches == [2])
        await eventually(relay.pending, lambda n: n == 0)
        assert relay.lag == 0 and relay.keeping_up  # the old rule: behind after a full batch
        # Commits counted as they are nudged, with no read of the outbox: the fourth one
        # past max_lag holds commands back while the relay cannot publish.
        await write_events(database, outbox, 1)
        relay.nudge()
        await eventually(lambda: _value(bus.held), lambda held: held == [2, 1])  # read, held
        assert relay.lag == 1
        for _ in range(3):
            await write_events(database, outbox, 1)
            relay.nudge()
        assert relay.lag == 4 and not relay.keeping_up
        assert not await relays.keeping_up(0.05)
        bus.always = True
        bus.through.set()
        await eventually(nudged_pending, lambda n: n == 0)
        await eventually(lambda: _value(relay.keeping_up), lambda keeping_up: keeping_up)
        assert await relays.keeping_up(0.01)
    finally:
        await relays.stop()


async def test_a_stopped_relay_holds_nobody_back(database: Database, outbox: Table) -> None:
    bus = OneBatchAtATime()
    relay = OutboxRelay(database, outbox, bus, batch_size=1, poll_interval=0.01)  # type: ignore[arg-type]
    await write_events(database, outbox, 3)
    relay.start()
    bus.through.set()
    await eventually(lambda: _value(relay.keeping_up), lambda keeping_up: not keeping_up)
    await relay.stop()
    assert relay.keeping_up and await Relays([relay]).keeping_up(0.01)


async def _value(value: T) -> T:
    return value


async def test_commands_held_back_are_counted(database: Database, outbox: Table) -> None:
    registry = CollectorRegistry()
    bus = OneBatchAtATime()
    relay = OutboxRelay(database, outbox, bus, batch_size=1, poll_interval=0.01)  # type: ignore[arg-type]
    relays = Relays([relay], metrics=EventMetrics(registry))
    await write_events(database, outbox, 3)
    assert await relays.keeping_up(0.01)  # not behind: not counted
    relay.start()
    try:
        bus.through.set()
        await eventually(lambda: _value(relay.keeping_up), lambda keeping_up: not keeping_up)
        assert await relays.keeping_up(0.05)  # the full batch's one admission
        assert not await relays.keeping_up(0.05)  # gave up
    finally:
        await relays.stop()

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    assert sample("archway_command_backpressure_total", outcome="admitted") == 1
    assert sample("archway_command_backpressure_total", outcome="gave_up") == 1
    assert sample("archway_command_backpressure_seconds_total") >= 0.05


async def test_backpressure_turned_off_leaves_no_coroutine_behind(
    database: Database, outbox: Table
) -> None:
    bus = OneBatchAtATime()
    relay = OutboxRelay(database, outbox, bus, batch_size=1, poll_interval=0.01)  # type: ignore[arg-type]
    relays = Relays([relay])
    await write_events(database, outbox, 3)
    relay.start()
    try:
        bus.through.set()
        await eventually(lambda: _value(relay.keeping_up), lambda keeping_up: not keeping_up)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert await relays.keeping_up(0)  # 0 turns backpressure off: never waits
            gc.collect()
        assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
    finally:
        await relays.stop()


async def test_settling_waits_for_running_relays_only(database: Database, outbox: Table) -> None:
    bus = OneBatchAtATime()
    idle = OutboxRelay(database, outbox, bus, batch_size=1, poll_interval=0.01)  # type: ignore[arg-type]
    await write_events(database, outbox, 2)
    started = time.monotonic()
    assert await Relays([idle]).settle(timeout=5)  # never started: nobody would publish them
    assert time.monotonic() - started < 1
    assert await idle.pending() == 2
    idle.start()
    try:
        bus.always = True
        bus.through.set()
        assert await Relays([idle]).settle(timeout=5)
        assert await idle.pending() == 0
    finally:
        await idle.stop()

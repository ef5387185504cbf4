"""Waking the relay of another process: a standby relay announces its nudges, and on
PostgreSQL the holder's process hears them (LISTEN/NOTIFY) and publishes at once.

The relays here poll every 30 s, so an event published within the test's few seconds was
published because of a wake-up, not a poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Table, text

from archway.kernel.db import Database
from archway.kernel.events.lease import OutboxLease
from archway.kernel.events.relay import OutboxRelay
from archway.kernel.events.relays import Relays
from archway.kernel.events.wakeups import APPLICATION_NAME, OutboxWakeups
from tests.ordering import eventually
from tests.relaying import FlakyBus, private_outbox, write_events

NO_POLL = 30.0


@pytest.fixture
async def outbox(database: Database) -> AsyncIterator[Table]:
    async with private_outbox(database) as table:
        yield table


def leased_relay(
    database: Database, outbox: Table, bus: FlakyBus, holder: str,
    wakeups: OutboxWakeups | None = None,
) -> OutboxRelay:
    relay = OutboxRelay(
        database, outbox, bus, poll_interval=NO_POLL,  # type: ignore[arg-type]
        lease=OutboxLease(database, outbox.name, holder=holder, ttl=10),
        announce=wakeups.announcer(outbox.name) if wakeups is not None else None)
    if wakeups is not None:
        wakeups.watch(relay)
    return relay


async def test_only_a_standby_relay_announces_its_nudges(database: Database, outbox: Table) -> None:
    announced: list[str] = []
    relays = [OutboxRelay(
        database, outbox, FlakyBus(), poll_interval=NO_POLL,  # type: ignore[arg-type]
        lease=OutboxLease(database, outbox.name, holder=name, ttl=10),
        announce=lambda name=name: announced.append(name)) for name in ("holder", "standby")]
    try:
        assert await relays[0].publish_pending() == 0  # takes the lease
        assert await relays[1].publish_pending() == 0  # finds it taken: stands by
        assert [relay.state() for relay in relays] == ["stopped", "stopped"]
        relays[0].nudge()  # its own commit wakes it in-process: nothing to tell anyone
        relays[1].nudge()
        relays[1].nudge()
        assert announced == ["standby", "standby"]
    finally:
        for relay in relays:
            await relay.stop()


@pytest.fixture
async def two_processes(database: Database) -> AsyncIterator[tuple[OutboxWakeups, OutboxWakeups]]:
    """Two processes' ends of the channel, both listening."""
    if database.is_sqlite:
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite processes poll")
    ends = (OutboxWakeups(database.url, reconnect_after=0.05),
            OutboxWakeups(database.url, reconnect_after=0.05))
    for end in ends:
        end.start()
    try:
        for end in ends:
            await eventually(lambda end=end: _value(end.listening), bool)
        yield ends
    finally:
        for end in ends:
            await end.stop()


async def test_a_commit_through_the_standby_process_is_published_by_the_holder_at_once(
    database: Database, outbox: Table, two_processes: tuple[OutboxWakeups, OutboxWakeups],
) -> None:
    holder_end, standby_end = two_processes
    bus = FlakyBus()
    holder = leased_relay(database, outbox, bus, "holder", holder_end)
    standby = leased_relay(database, outbox, bus, "standby", standby_end)
    assert await holder.publish_pending() == 0  # takes the lease first
    holder.start()
    standby.start()
    await eventually(lambda: _value(standby.state()), lambda state: state == "standby")
    try:
        for _ in range(3):  # each time: a commit in the standby's process, then its nudge
            ids = await write_events(database, outbox, 2)
            standby.nudge()
            await eventually(lambda: _value(bus.published[-2:]), lambda seen, ids=ids: seen == ids)
        assert holder_end.heard >= 3 and standby_end.sent >= 3
    finally:
        await standby.stop()
        await holder.stop()


async def test_the_wakeups_reconnect_when_their_connection_is_cut(
    database: Database, two_processes: tuple[OutboxWakeups, OutboxWakeups],
) -> None:
    listener, sender = two_processes

    relay = FakeRelay()
    listener.watch(relay)
    announce = sender.announcer(relay.name)
    announce()
    await eventually(lambda: _value(relay.woken), lambda woken: woken >= 1)

    cut = text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
               "WHERE application_name = :name AND datname = current_database()")
    assert await database.read(lambda conn: conn.execute(cut, {"name": APPLICATION_NAME})
                               .scalar_one()) >= 2
    await eventually(lambda: _value(listener.listening and sender.listening), bool)
    before = relay.woken

    async def announced() -> int:
        announce()
        await asyncio.sleep(0.05)
        return relay.woken

    await eventually(announced, lambda woken: woken > before)


class FakeRelay:
    name = "relaytest_outbox"

    def __init__(self) -> None:
        self.woken = 0
        self.lags: list[int] = []

    def wake(self) -> None:
        self.woken += 1

    def heard(self, lag: int) -> None:
        self.lags.append(lag)


async def test_the_holders_lag_reaches_the_standbys_process(
    two_processes: tuple[OutboxWakeups, OutboxWakeups],
) -> None:
    standby_end, holder_end = two_processes
    relay = FakeRelay()
    standby_end.watch(relay)
    report = holder_end.reporter(relay.name)
    report(900)
    report(700)  # sent together: only the latest counts
    await eventually(lambda: _value(relay.lags), lambda lags: lags[-1:] == [700])
    report(3)
    await eventually(lambda: _value(relay.lags), lambda lags: lags[-1:] == [3])
    assert relay.lags == [700, 3]


async def _value(value: object) -> object:
    return value


async def test_a_standby_paces_its_commands_by_the_lag_the_holder_reports(
    database: Database, outbox: Table
) -> None:
    """The holder reports its lag while behind and once after; a standby that hears it holds
    its commands back as the holder does (each report while behind lets a quarter batch in),
    and lets them go once the holder is no longer behind or has not reported for a while."""
    reports: list[int] = []
    holder = OutboxRelay(
        database, outbox, FlakyBus(), batch_size=4, max_lag=4,  # type: ignore[arg-type]
        poll_interval=NO_POLL, lease=OutboxLease(database, outbox.name, holder="h", ttl=10),
        report=reports.append)
    standby = OutboxRelay(
        database, outbox, FlakyBus(), batch_size=4, max_lag=4,  # type: ignore[arg-type]
        poll_interval=0.05, lease=OutboxLease(database, outbox.name, holder="s", ttl=10))
    standby_relays = Relays([standby])
    assert await holder.publish_pending() == 0  # takes the lease
    standby.start()
    try:
        await eventually(lambda: _value(standby.state()), lambda state: state == "standby")
        assert await standby_relays.keeping_up(0.01)  # nothing heard: nobody waits

        standby.heard(10)  # the holder is 10 events behind
        await eventually(lambda: _value(standby.keeping_up), lambda keeping_up: not keeping_up)
        assert await standby_relays.keeping_up(0.05)  # the report let one command in (4 // 4)
        assert not await standby_relays.keeping_up(0.05)  # the next one waits
        waiting = asyncio.create_task(standby_relays.keeping_up(5.0))
        await asyncio.sleep(0.02)
        assert not waiting.done()
        standby.heard(2)  # caught up
        assert await waiting
        assert standby.keeping_up

        standby.heard(10)  # behind again, then the holder falls silent (it died, say)
        await eventually(lambda: _value(standby.keeping_up), lambda keeping_up: not keeping_up)
        await eventually(lambda: _value(standby.keeping_up), bool, timeout=2)  # 2 polls on

        # The holder's side: it reports while behind, then once when it is not.
        await write_events(database, outbox, 12)  # three full batches: 8, then 4 left behind
        holder.start()
        await eventually(holder.pending, lambda n: n == 0)
        await eventually(lambda: _value(reports), lambda seen: len(seen) >= 2)
        assert reports == [8, 4]
    finally:
        await standby_relays.stop()
        await holder.stop()

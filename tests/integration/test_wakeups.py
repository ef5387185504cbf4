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

    class Relay:
        name = "relaytest_outbox"
        woken = 0

        def wake(self) -> None:
            self.woken += 1

    relay = Relay()
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


async def _value(value: object) -> object:
    return value

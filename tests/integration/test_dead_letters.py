"""Dead letters on a real database: a poison event is parked for its consumer after a bounded
number of attempts, later events flow on, and an operator's retry applies it exactly once.

Each test relays an outbox of its own to a consumer with its own inbox, effects and dead
letters, created for it and dropped after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from archway.kernel.db import Database
from archway.kernel.events.bus import InProcessBus
from archway.kernel.events.cloudevent import Event, make_event
from archway.kernel.events.dead_letters import DeadLetterOffice, DeadLetterStore
from archway.kernel.events.inbox import Consumer
from archway.kernel.events.metrics import EventMetrics
from archway.kernel.events.outbox import append
from archway.kernel.events.relay import OutboxRelay
from archway.kernel.events.tables import dead_letter_table, inbox_table, outbox_table
from tests.ordering import eventually

TYPE = "archway.dltest.counted.v1"
CONSUMER = "dltest.counter"
MAX_ATTEMPTS = 3


@dataclass
class Setup:
    outbox: Table
    effects: Table
    relay: OutboxRelay
    office: DeadLetterOffice
    registry: CollectorRegistry
    poison: Poison


class Poison:
    """An effect that writes one row per event and raises, while ``broken``, for the events
    it names (a bug the operator fixes later)."""

    def __init__(self, effects: Table) -> None:
        self.effects = effects
        self.failing: set[int] = set()
        self.error: Exception = ValueError("integer out of range")
        self.calls = 0

    def apply(self, conn: Connection, event: Event) -> None:
        n = event.get_data()["n"]  # type: ignore[index]
        if n in self.failing:
            self.calls += 1
            raise self.error
        conn.execute(insert(self.effects).values(event_id=event.get_id(), n=n))


@pytest.fixture
async def setup(database: Database) -> AsyncIterator[Setup]:
    metadata = MetaData()
    outbox = outbox_table(metadata, "dltest")
    inbox = inbox_table(metadata, "dltest")
    parked = dead_letter_table(metadata, "dltest")
    effects = Table("dltest_effects", metadata, Column("event_id", String(64), primary_key=True),
                    Column("n", Integer, nullable=False))
    await database.write(lambda conn: metadata.create_all(conn))
    registry = CollectorRegistry()
    metrics = EventMetrics(registry)
    poison = Poison(effects)
    office = DeadLetterOffice(max_attempts=MAX_ATTEMPTS, metrics=metrics)
    bus = InProcessBus(metrics)
    await bus.subscribe(CONSUMER, [TYPE], office.guard(
        CONSUMER, Consumer(database, inbox, CONSUMER, poison.apply),
        DeadLetterStore(database, parked)))
    await bus.start()
    relay = OutboxRelay(database, outbox, bus, poll_interval=0.01, max_backoff=0.02,
                        metrics=metrics)
    try:
        yield Setup(outbox, effects, relay, office, registry, poison)
    finally:
        await relay.stop()
        await bus.stop()
        await database.write(lambda conn: metadata.drop_all(conn))


async def write(database: Database, outbox: Table, numbers: range) -> list[Event]:
    events = [make_event(TYPE, "/archway/dltest", f"s-{n}", {"n": n}) for n in numbers]
    await database.write(lambda conn: append(conn, outbox, events))
    return events


async def applied(database: Database, effects: Table) -> list[int]:
    return await database.read(lambda conn: list(conn.execute(
        select(effects.c.n).order_by(effects.c.n)).scalars()))


async def test_a_poison_event_is_parked_after_its_attempts_and_later_events_flow_on(
    database: Database, setup: Setup
) -> None:
    setup.poison.failing = {1}
    events = await write(database, setup.outbox, range(3))
    setup.relay.start()
    await eventually(lambda: applied(database, setup.effects), lambda n: n == [0, 2])
    await eventually(setup.relay.pending, lambda n: n == 0)  # the relay is not blocked

    [letter] = await setup.office.parked()
    assert (letter.consumer, letter.event_id, letter.event_type) == (
        CONSUMER, events[1].get_id(), TYPE)
    assert letter.attempts == MAX_ATTEMPTS
    assert letter.last_error == "ValueError: integer out of range"
    assert setup.relay.state() == "running"
    assert await setup.office.counts() == {CONSUMER: 1}
    assert await setup.office.readiness() == {"status": "degraded", "parked": {CONSUMER: 1}}
    await setup.office.refresh_metrics()
    sample = setup.registry.get_sample_value
    assert sample("archway_events_dead_lettered_total", {"consumer": CONSUMER, "type": TYPE}) == 1
    assert sample("archway_events_dead_letters", {"consumer": CONSUMER}) == 1

    # Events after it keep flowing, to the same consumer.
    await write(database, setup.outbox, range(3, 5))
    setup.relay.nudge()
    await eventually(lambda: applied(database, setup.effects), lambda n: n == [0, 2, 3, 4])


async def test_a_retry_that_fails_again_leaves_it_parked_and_a_fixed_one_applies_once(
    database: Database, setup: Setup
) -> None:
    setup.poison.failing = {0}
    await write(database, setup.outbox, range(2))
    setup.relay.start()
    await eventually(lambda: applied(database, setup.effects), lambda n: n == [1])
    [letter] = await setup.office.parked()

    outcome, again = await setup.office.retry(letter.id)
    assert outcome == "failed" and again is not None
    assert again.attempts == MAX_ATTEMPTS + 1 and again.id == letter.id
    assert again.last_error == "ValueError: integer out of range"

    setup.poison.failing = set()  # the operator deployed the fix
    outcome, _ = await setup.office.retry(letter.id)
    assert outcome == "applied"
    assert await applied(database, setup.effects) == [0, 1]
    assert await setup.office.parked() == []
    assert await setup.office.readiness() == {"status": "ok", "parked": {}}
    assert (await setup.office.retry(letter.id))[0] == "not_found"
    await setup.office.refresh_metrics()
    assert setup.registry.get_sample_value(
        "archway_events_dead_letters", {"consumer": CONSUMER}) == 0


async def test_a_parked_event_delivered_again_is_skipped_not_counted_again(
    database: Database, setup: Setup
) -> None:
    setup.poison.failing = {0}
    events = await write(database, setup.outbox, range(1))
    setup.relay.start()
    await eventually(setup.office.parked, lambda letters: len(letters) == 1)
    await eventually(setup.relay.pending, lambda n: n == 0)
    calls = setup.poison.calls
    guarded = setup.office._guarded[CONSUMER]  # the handler the bus calls
    await guarded(events)  # at least once: the relay may deliver it again
    assert setup.poison.calls == calls + 1  # tried, failed, and left parked at once
    [letter] = await setup.office.parked()
    assert letter.attempts == MAX_ATTEMPTS


async def test_the_database_failing_never_parks_an_event(
    database: Database, setup: Setup
) -> None:
    setup.poison.failing = {0}
    setup.poison.error = OperationalError("UPDATE", {}, Exception("database is locked"))
    await write(database, setup.outbox, range(2))
    setup.relay.start()
    await eventually(lambda: _calls(setup.poison), lambda n: n >= 2 * MAX_ATTEMPTS)
    assert await setup.office.parked() == []
    assert await applied(database, setup.effects) == []  # it waits, in order, as before
    setup.poison.failing = set()  # the database is back
    await eventually(lambda: applied(database, setup.effects), lambda n: n == [0, 1])


async def _calls(poison: Poison) -> int:
    return poison.calls

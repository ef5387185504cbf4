"""Helpers for relay tests: an outbox of their own and a bus that can be broken on purpose.

The outbox (``relaytest_outbox``) is created for a test and dropped after it, so the app's
relays, which run on the orders and catalog outboxes, never see these events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import MetaData, Table

from archway.kernel.db import Database
from archway.kernel.events.cloudevent import Event, make_event
from archway.kernel.events.outbox import append
from archway.kernel.events.tables import outbox_table

EVENT_TYPE = "archway.relaytest.thing_happened.v1"


class PublishOnlyBus:
    """The rest of the bus port for test buses that only take what a relay publishes."""

    async def subscribe(self, consumer_name: str, event_types: object, handler: object) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def pending(self) -> int:
        return 0


class FlakyBus(PublishOnlyBus):
    """Records what it is handed; raises while ``broken`` is set. Yields to the loop on every
    publish, so two relays really do interleave."""

    def __init__(self) -> None:
        self.published: list[str] = []
        self.broken = False

    async def publish(self, events: Sequence[Event]) -> None:
        await asyncio.sleep(0)
        if self.broken:
            raise ConnectionError("the bus is down")
        self.published.extend(event.get_id() for event in events)


@asynccontextmanager
async def private_outbox(database: Database) -> AsyncIterator[Table]:
    """An outbox of the test's own, created now and dropped at the end."""
    table = outbox_table(MetaData(), "relaytest")
    await database.write(lambda conn: table.create(conn, checkfirst=True))
    try:
        yield table
    finally:
        await database.write(lambda conn: table.drop(conn, checkfirst=True))


async def write_events(db: Database, outbox: Table, count: int) -> list[str]:
    events = [make_event(EVENT_TYPE, "/archway/relaytest", f"s-{i}", {"i": i})
              for i in range(count)]
    await db.write(lambda conn: append(conn, outbox, events))
    return [event.get_id() for event in events]

"""At-least-once delivery and exactly-once effects of the order saga, across crashes.

How the crashes are simulated (no database is mocked):

* **Real crashes** (:func:`test_a_process_killed_at_a_crash_point_recovers_with_one_effect`):
  a child process (``python -c``) builds the real monolith graph over its own database, starts
  its relay(s) and places (or cancels) an order; a thin wrapper around the real in-process bus,
  or around the catalog's cache drop after its commit, sends the process ``SIGKILL`` at one
  crash point:

  - ``publish:<type>``: the command committed the change and its outbox row, and the process
    dies as the relay is about to publish it (between commit and publish);
  - ``reserve``: the catalog committed the stock reservation with its answer and inbox row
    (one transaction), and dies before any other consumer ran and before the relay marked the
    event published;
  - ``handled:<type>``: every consumer committed its effect and inbox row, and the process dies
    before the relay marks the row published (between the effect and its acknowledgement);
  - ``idempotency``: ``POST /orders`` with an ``Idempotency-Key`` committed the order, and the
    process dies as the answer writer would store the key's answer; the late retry must find the
    order through the key kept with the order itself, answer with it and place nothing new.

  Nothing in the child gets to clean up: no ``finally``, no shutdown, no pool disposal. The
  test lets the dead process's outbox leases lapse (``expires_at`` in the past, as after
  their ttl), then builds a *fresh* graph (``archway.topologies.monolith.build``) over the same
  database in the test process, as a restarted process would, starts its relays and checks
  that the event is delivered again and that every effect happened exactly once.
* **Replays in one process** (the other tests): separate graphs over the same database, with a
  bus that fails every acknowledgement once after the consumers ran, or with the outboxes
  reset to unpublished after a finished saga (a relay that published everything and died
  before marking), so every event of the saga is delivered a second time.

The tests use a database of their own (a SQLite file, or a PostgreSQL database beside the
suite's, dropped afterwards) so that no relay of the suite's shared app can deliver the events
of a "crashed" process before the test has looked at what the crash left.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from archway.catalog.consumers import STOCK_RESERVED
from archway.catalog.store import catalog_outbox
from archway.kernel.events.bus import DeliveryFailed, InProcessBus
from archway.kernel.events.cloudevent import Event
from archway.kernel.tables import idempotency_keys
from archway.orders.consumers import SAGA_CONSUMER
from archway.orders.domain import LineRequest
from archway.orders.events import (
    ORDER_CANCELLED,
    ORDER_PLACED,
)
from archway.orders.store import (
    orders,
    orders_outbox,
)
from archway.topologies.monolith import Monolith, create_app
from tests.integration.orders.crash_harness import (
    CUSTOMER,
    PRICE,
    QUANTITY,
    Crasher,
    assert_exactly_once,
    leases_lapse,
    ledger,
    recovered,
    start,
)
from tests.ordering import eventually, stock_of, stocked_product

# -- real crashes ---------------------------------------------------------------------------


CRASH_POINTS = {
    # crash point: (relays the child runs, stock held when it died)
    f"publish:{ORDER_PLACED}": ("orders", (5, 0)),
    "reserve": ("orders", (5, 2)),
    f"handled:{ORDER_PLACED}": ("orders", (5, 2)),
    f"handled:{STOCK_RESERVED}": ("orders,catalog", (5, 2)),
}


@pytest.mark.parametrize("crash_point", list(CRASH_POINTS))
async def test_a_process_killed_at_a_crash_point_recovers_with_one_effect(
    crash_db: str, fresh: list[Monolith], crasher: Crasher, crash_point: str
) -> None:
    setup = await start(fresh, crash_db, relays=False)
    beans = await stocked_product(setup, "CRASH-1", on_hand=5)
    relays, held_at_crash = CRASH_POINTS[crash_point]

    (order_id,) = await crasher.run(
        crash_db, crash_point, relays, "place", beans, str(QUANTITY))

    # What the crash left: the command committed; the crash point's event is not marked.
    left = await ledger(setup, order_id)
    assert await stock_of(setup, beans) == held_at_crash
    assert left.orders_events[0][0] == ORDER_PLACED
    if relays == "orders":  # order_placed is the event the child died on
        assert left.orders_events == [(ORDER_PLACED, False)]
    if crash_point == f"publish:{ORDER_PLACED}":
        assert (left.status, left.view, left.catalog_events) == ("pending", [], [])
    if crash_point == "reserve":  # held, recorded and answered; nothing acknowledged
        assert (left.reservation, left.catalog_inbox) == ("held", 1)
        assert (left.catalog_events, left.view) == ([(STOCK_RESERVED, False)], [])
    if crash_point == f"handled:{ORDER_PLACED}":  # every consumer's effect is in
        assert left.catalog_inbox == 1 and left.view == [("pending", 1)]
        assert left.catalog_events == [(STOCK_RESERVED, False)]
    if crash_point == f"handled:{STOCK_RESERVED}":  # the saga's effect is in
        assert left.status == "confirmed" and left.orders_inbox[SAGA_CONSUMER] == 1
        assert left.catalog_events == [(STOCK_RESERVED, False)]

    await leases_lapse(setup)
    restarted = await start(fresh, crash_db)
    seen = await recovered(restarted, order_id, "confirmed")
    assert_exactly_once(seen)
    assert not seen.reports or seen.spent == (1, QUANTITY * PRICE)
    assert await stock_of(restarted, beans) == (5, QUANTITY)


async def test_a_process_killed_after_releasing_a_cancelled_order_releases_once(
    crash_db: str, fresh: list[Monolith], crasher: Crasher
) -> None:
    first = await start(fresh, crash_db)
    beans = await stocked_product(first, "CRASH-2", on_hand=5)
    other = await stocked_product(first, "CRASH-3", on_hand=5)
    order = await first.orders.place_order(CUSTOMER, [LineRequest(beans, QUANTITY)])
    await recovered(first, order.id, "confirmed")
    # Another order holds stock of a second product, and must keep holding it.
    keeps = await first.orders.place_order(CUSTOMER, [LineRequest(other, 3)])
    await recovered(first, keeps.id, "confirmed")
    await first.close()
    fresh.remove(first)

    await crasher.run(crash_db, f"handled:{ORDER_CANCELLED}", "orders", "cancel", order.id)

    restarted = await start(fresh, crash_db, relays=False)
    left = await ledger(restarted, order.id)
    assert left.orders_events[-1] == (ORDER_CANCELLED, False)
    assert (left.status, left.reservation) == ("cancelled", "released")
    assert await stock_of(restarted, beans) == (5, 0)

    await leases_lapse(restarted)
    restarted.relays.start()
    seen = await recovered(restarted, order.id, "cancelled")
    assert_exactly_once(seen, cancelled=True)
    assert not seen.reports or seen.spent == (1, 3 * PRICE)  # only the order kept counts
    assert await stock_of(restarted, beans) == (5, 0)  # released once: never below zero
    assert await stock_of(restarted, other) == (5, 3)


async def test_a_retry_after_a_crash_between_the_order_and_its_idempotency_key_places_once(
    crash_db: str, fresh: list[Monolith], crasher: Crasher
) -> None:
    graph = await start(fresh, crash_db)
    await graph.keys.ensure_key()
    alice = await graph.identity.register(
        "alice@crash.test", "crash-alice-pw", "Alice", frozenset({"customer"}))
    token = await graph.identity.issue_dev_token("alice@crash.test", ["orders:write"])
    beans = await stocked_product(graph, "CRASH-4", on_hand=5)

    await crasher.run(crash_db, "idempotency", "", "http-place", token, "retry-me", beans, "2")
    await leases_lapse(graph)
    assert await graph.relays.settle(timeout=5.0)  # the first order's saga goes on

    def placed(conn: Connection) -> list[str]:
        return list(conn.execute(select(orders.c.id).where(
            orders.c.customer_id == alice.id)).scalars())

    [order_id] = await graph.db.read(placed)  # the order committed before the process died
    app = create_app(graph.settings, graph=graph)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        async def retry() -> httpx.Response:
            return await http.post("/api/v1/orders", json={
                "lines": [{"product_id": beans, "quantity": 2}]},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "retry-me"})

        assert (await retry()).status_code == 409  # still in flight: the dead process's claim
        # Time passes: the dead claim's lock lapses (IN_FLIGHT_LOCK_SECONDS), and the client
        # retries: the order, kept with its key, is the answer; it becomes the key's answer.
        await graph.db.write(lambda conn: conn.execute(
            update(idempotency_keys).values(locked_until=0)))
        again = await retry()
        await graph.idempotency.answers.flush()
        replayed = await retry()
    assert await graph.relays.settle(timeout=5.0)
    assert await graph.db.read(placed) == [order_id]
    for answer in (again, replayed):
        assert answer.status_code == 202, answer.text
        assert answer.headers["idempotent-replayed"] == "true"
        assert answer.json()["id"] == order_id
        assert answer.headers["location"] == f"/api/v1/orders/{order_id}"
    assert replayed.content == again.content
    assert await stock_of(graph, beans) == (5, 2)


# -- replays in one process -------------------------------------------------------------------


class AckFailsOnce(InProcessBus):
    """Every consumer runs, then the acknowledgement of each event fails the first time."""

    def __init__(self) -> None:
        super().__init__()
        self.deliveries: dict[str, int] = {}

    async def publish(self, events: Sequence[Event]) -> None:
        await super().publish(events)
        firsts = []
        for index, event in enumerate(events):
            seen = self.deliveries[event.get_id()] = self.deliveries.get(event.get_id(), 0) + 1
            if seen == 1:
                firsts.append(index)
        if firsts:  # the events before the first new one were acknowledged
            raise DeliveryFailed(firsts[0], "the acknowledgement was lost")


async def test_when_every_acknowledgement_fails_once_each_event_comes_twice_with_one_effect(
    crash_db: str, fresh: list[Monolith]
) -> None:
    bus = AckFailsOnce()
    graph = await start(fresh, crash_db, bus=bus)
    beans = await stocked_product(graph, "ACK-1", on_hand=5)
    order = await graph.orders.place_order(CUSTOMER, [LineRequest(beans, QUANTITY)])
    await recovered(graph, order.id, "confirmed")
    await graph.orders.cancel_order(CUSTOMER, order.id)
    seen = await recovered(graph, order.id, "cancelled")

    assert_exactly_once(seen, cancelled=True)
    assert sorted(bus.deliveries.values()) == [2, 2, 2, 2]  # placed, reserved, confirmed, cancel
    assert await stock_of(graph, beans) == (5, 0)

    def attempts(conn: Connection) -> list[tuple[int, str | None]]:
        return [(row.attempts, row.last_error) for row in conn.execute(
            select(orders_outbox.c.attempts, orders_outbox.c.last_error))]

    assert await graph.db.read(attempts) == [(2, None)] * 3  # the failure was recorded, then healed


async def test_replaying_the_whole_event_log_after_a_relay_died_before_marking_changes_nothing(
    crash_db: str, fresh: list[Monolith]
) -> None:
    first = await start(fresh, crash_db)
    beans = await stocked_product(first, "REPLAY-1", on_hand=7)
    kept = await first.orders.place_order(CUSTOMER, [LineRequest(beans, 3)])
    gone = await first.orders.place_order(CUSTOMER, [LineRequest(beans, 2)])
    refused = await first.orders.place_order(CUSTOMER, [LineRequest(beans, 5)])
    for order in (kept, gone):
        await recovered(first, order.id, "confirmed")
    await first.orders.cancel_order(CUSTOMER, gone.id)
    await recovered(first, gone.id, "cancelled")
    await eventually(lambda: ledger(first, refused.id), lambda seen: seen.view == [
        ("rejected", 2)])
    assert await first.relays.settle(timeout=5.0)
    before = {order.id: await ledger(first, order.id) for order in (kept, gone, refused)}
    assert await stock_of(first, beans) == (7, 3)
    await first.close()
    fresh.remove(first)

    def unmark(conn: Connection) -> None:
        for outbox in (orders_outbox, catalog_outbox):
            conn.execute(update(outbox).values(published_at=None))

    restarted = await start(fresh, crash_db, relays=False)
    await restarted.db.write(unmark)
    restarted.relays.start()
    assert await restarted.relays.settle(timeout=10.0)

    after = {order.id: await ledger(restarted, order.id) for order in (kept, gone, refused)}
    assert all(seen.all_published for seen in after.values())
    assert after == before
    assert await stock_of(restarted, beans) == (7, 3)

    def delivered_twice(conn: Connection) -> set[int]:
        return set(conn.execute(select(orders_outbox.c.attempts)).scalars())

    assert await restarted.db.read(delivered_twice) == {2}

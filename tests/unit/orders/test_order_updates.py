"""OrderUpdates: the order view wakes exactly the watchers of the orders it applied."""

from __future__ import annotations

from archway.kernel.events.cloudevent import Event, make_event
from archway.orders.updates import OrderUpdates


def event(order_id: str) -> Event:
    return make_event("archway.orders.order_confirmed.v1", "/archway/orders", order_id,
                      {"order_id": order_id})


async def test_applied_events_wake_their_orders_watchers_only() -> None:
    updates = OrderUpdates()
    with updates.watching("a") as a, updates.watching("a") as a_too, updates.watching("b") as b:
        assert updates.watched() == 2
        updates.applied([event("a"), event("c")])
        assert a.is_set() and a_too.is_set() and not b.is_set()
    assert updates.watched() == 0  # a watcher that left is forgotten
    updates.applied([event("a")])  # nobody watches: nothing to wake, nothing kept
    assert updates.watched() == 0

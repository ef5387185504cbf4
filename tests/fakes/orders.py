"""A fake of the orders' repository."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from archway.kernel.events.cloudevent import Event
from archway.orders.domain import Order
from tests.fakes.state import FakeIntegrityError, FakeOutboxRow, FakeState


class FakeOrders:
    """``orders.store.OrderRepository`` in memory. Orders go in and come out as copies, as rows
    do, so a change to a loaded order counts only once it is saved; ``save`` writes what the
    real one writes (status, reason, version, time), nothing else."""

    def __init__(self, state: FakeState) -> None:
        self._state = state

    def add(self, order: Order) -> None:
        if order.id in self._state.orders:
            raise FakeIntegrityError(f"order {order.id} exists")
        self._state.orders[order.id] = _stored(order)

    def get(self, order_id: str, *, lock: bool = False) -> Order | None:
        order = self._state.orders.get(order_id)
        return _stored(order) if order is not None else None

    def get_many(self, order_ids: Sequence[str], *, lock: bool = False) -> dict[str, Order]:
        return {order_id: _stored(self._state.orders[order_id])
                for order_id in sorted(set(order_ids)) if order_id in self._state.orders}

    def save_many(self, changed: Sequence[tuple[Order, int]]) -> bool:
        # Each row written if still at its version, the others not: as one UPDATE for many.
        written = [self.save(order, previous) for order, previous in changed]
        return all(written)

    def save(self, order: Order, previous_version: int) -> bool:
        current = self._state.orders.get(order.id)
        if current is None or current.version != previous_version:
            return False
        self._state.orders[order.id] = replace(
            current, status=order.status, rejection_reason=order.rejection_reason,
            version=order.version, updated_at=order.updated_at, events=[])
        return True

    def placed_with(self, customer_id: str, key: str) -> str | None:
        return self._state.placement_keys.get((customer_id, key))

    def remember_key(self, order: Order, key: str) -> None:
        if (order.customer_id, key) in self._state.placement_keys:
            raise FakeIntegrityError(f"key {key!r} of {order.customer_id} is taken")
        self._state.placement_keys[(order.customer_id, key)] = order.id

    def append(self, events: Iterable[Event]) -> None:
        outbox = self._state.orders_outbox
        for event in events:
            position = outbox[-1].position + 1 if outbox else 1
            outbox.append(FakeOutboxRow(position, event))

    def last_position(self, order_id: str) -> int:
        return max((row.position for row in self._state.orders_outbox
                    if row.event.get_subject() == order_id), default=0)


def _stored(order: Order) -> Order:
    return replace(order, events=[])  # lines are immutable; the record of events is not kept

"""Who watches an order: the order view wakes them when it has applied an event about it.

The source of an order's changes is the read model itself: the order view's projection calls
:meth:`OrderUpdates.applied` after each commit with the events it applied, and a watcher then
reads the order from the read model, as every query does. A watcher in another process than
the one whose projection applied the event is not woken; watchers therefore also look again
every ``poll_seconds`` (see ``orders.graphql.order_updates``), so they are late, never stuck.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from archway.kernel.events.cloudevent import Event, data_of


class OrderUpdates:
    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Event]] = {}

    def applied(self, events: Sequence[Event]) -> None:
        """After the order view committed ``events``: wake every watcher of their orders."""
        for event in events:
            order_id = str(data_of(event).get("order_id") or event.get_subject())
            for changed in self._watchers.get(order_id, ()):
                changed.set()

    @contextmanager
    def watching(self, order_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``order_id`` changed since it was last cleared."""
        changed = asyncio.Event()
        self._watchers.setdefault(order_id, set()).add(changed)
        try:
            yield changed
        finally:
            watchers = self._watchers[order_id]
            watchers.discard(changed)
            if not watchers:
                del self._watchers[order_id]

    def watched(self) -> int:
        """How many orders are watched now (for tests and metrics)."""
        return len(self._watchers)

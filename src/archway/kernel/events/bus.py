"""The event bus port, and the in-process bus the monolith uses by default.

The port is what a relay publishes to and what a composition root subscribes consumers on;
contexts never see which bus runs. Events travel in **batches**, in order: a relay hands over
what it read from its outbox in one go, and a consumer applies a batch in one transaction (see
:class:`~archway.kernel.events.inbox.Consumer`). Under load that turns one commit per event and
consumer into one per batch, which is what lets the saga keep up with the commands.

A NATS JetStream bus implements the same port: ``start`` connects, ``subscribe`` creates a
durable consumer named ``consumer_name`` filtered on ``event_types``, that fetches batches,
calls ``handler`` and acknowledges what it handled (so a failure is redelivered, as here),
``publish`` puts each structured CloudEvent on the subject named by its type, ``pending`` is
what its consumers have not acknowledged (kept from their last fetch), and ``stop`` drains.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from archway.kernel.events.cloudevent import Event
from archway.kernel.events.metrics import EventMetrics

Handler = Callable[[Sequence[Event]], Awaitable[object]]
"""A consumer: handles every event of a batch in order, or raises. Raising
:class:`PartiallyHandled` says how many of the batch were handled before the failure; any
other exception means none are known to be."""

_log = logging.getLogger("archway.events")


class EventBus(Protocol):
    """Lifecycle: subscribe every consumer, ``start``, publish, ``stop``. A composition root
    subscribes before it starts its relays, so that no event is published to a bus that does
    not know its consumers yet."""

    async def start(self) -> None:
        """Connect and begin delivering to the subscribed consumers (idempotent)."""
        ...

    async def stop(self) -> None:
        """Stop delivering and disconnect (idempotent); ``publish`` then raises."""
        ...

    async def subscribe(
        self, consumer_name: str, event_types: Collection[str], handler: Handler
    ) -> None:
        """Call ``handler`` with the events of ``event_types``; ``consumer_name`` identifies the
        consumer durably (its inbox rows, a JetStream durable consumer)."""
        ...

    async def publish(self, events: Sequence[Event]) -> None:
        """Deliver ``events``, in order, to every subscriber of their types. Raises
        :class:`DeliveryFailed` unless every subscriber handled all of them, saying how many
        (a prefix) were, so the caller (a relay) delivers the rest again later."""
        ...

    def pending(self) -> int:
        """Events published but not yet handled by every consumer, as far as this process
        knows without any I/O (it feeds backpressure on every command)."""
        ...


class BusStopped(Exception):
    """``publish`` on a bus that is not started (or was stopped)."""


class PartiallyHandled(Exception):
    """A consumer handled (and committed) the first ``handled`` events of a batch, then failed."""

    def __init__(self, handled: int, message: str) -> None:
        super().__init__(message)
        self.handled = handled


class DeliveryFailed(Exception):
    """Some subscriber failed: the first ``delivered`` events of the batch reached every
    subscriber; the later ones did not (those that did reach a consumer are skipped by its
    inbox when they come again)."""

    def __init__(self, delivered: int, message: str) -> None:
        super().__init__(message)
        self.delivered = delivered


@dataclass(frozen=True, slots=True)
class Subscription:
    consumer_name: str
    event_types: frozenset[str]
    handler: Handler


class InProcessBus:
    """Calls each subscriber in turn with its share of the batch, in the publisher's task.

    ``publish`` returns once every subscriber has handled its events, so a relay marks an
    event published only after all its consumers succeeded: at least once for each of them.
    A failing subscriber does not stop the others. With ``metrics``, each handler's successes
    and failures are counted per consumer and event type (the bus is the one place that sees
    every consumer, whatever it does inside).
    """

    def __init__(self, metrics: EventMetrics | None = None) -> None:
        self._subscriptions: dict[str, Subscription] = {}
        self._metrics = metrics
        self._started = False

    async def start(self) -> None:
        self._started = True

    async def stop(self) -> None:
        self._started = False

    def pending(self) -> int:
        return 0  # publish returns only once every consumer handled its share

    async def subscribe(
        self, consumer_name: str, event_types: Collection[str], handler: Handler
    ) -> None:
        if consumer_name in self._subscriptions:
            raise ValueError(f"{consumer_name} is already subscribed")
        self._subscriptions[consumer_name] = Subscription(
            consumer_name, frozenset(event_types), handler)

    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions.values())

    async def publish(self, events: Sequence[Event]) -> None:
        if not self._started:
            raise BusStopped("the in-process bus is not started")
        delivered, failed = len(events), []
        for subscription in self._subscriptions.values():
            indexes = [i for i, event in enumerate(events)
                       if event.get_type() in subscription.event_types]
            if not indexes:
                continue
            mine = [events[i] for i in indexes]
            try:
                await subscription.handler(mine)
                handled = len(mine)
            except Exception as exc:  # noqa: BLE001 - one failing consumer must not starve the others
                handled = min(exc.handled, len(mine) - 1) if isinstance(
                    exc, PartiallyHandled) else 0
                failing = mine[handled]
                _log.exception(
                    "consumer %s failed on %s %s", subscription.consumer_name,
                    failing.get_type(), failing.get_id())
                failed.append(subscription.consumer_name)
                delivered = min(delivered, indexes[handled])
                self._count(subscription.consumer_name, mine[:handled], failing)
            else:
                self._count(subscription.consumer_name, mine, None)
        if failed:
            raise DeliveryFailed(
                delivered, f"{delivered} of {len(events)} delivered; {', '.join(failed)} failed")

    def _count(self, consumer: str, handled: Sequence[Event], failing: Event | None) -> None:
        if self._metrics is None:
            return
        self._metrics.consumed_batch(consumer, [event.get_type() for event in handled])
        if failing is not None:
            self._metrics.consumer_failed(consumer, failing.get_type())

"""The event bus port, and the in-process bus the monolith uses by default.

The port is what a relay publishes to and what a composition root subscribes consumers on;
contexts never see which bus runs. A NATS JetStream bus implements the same two methods:
``publish`` puts the structured CloudEvent on the subject named by its type, and ``subscribe``
creates a durable consumer named ``consumer_name`` that calls ``handler`` and acknowledges
only when it returns (so a failure is redelivered, as here).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from archway.kernel.events.cloudevent import Event, handling
from archway.kernel.events.metrics import EventMetrics

Handler = Callable[[Event], Awaitable[object]]

_log = logging.getLogger("archway.events")


class EventBus(Protocol):
    async def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber of its type; raises if any of them failed,
        so the caller (a relay) keeps the event and delivers it again later."""
        ...

    def subscribe(self, event_type: str, consumer_name: str, handler: Handler) -> None:
        """Call ``handler`` for each event of ``event_type``; ``consumer_name`` identifies the
        consumer durably (its inbox rows, a JetStream durable consumer)."""
        ...


@dataclass(frozen=True, slots=True)
class Subscription:
    event_type: str
    consumer_name: str
    handler: Handler


class DeliveryFailed(Exception):
    """One or more subscribers failed; the others have handled the event (and will skip it
    when it comes again, through their inbox)."""


class InProcessBus:
    """Calls each subscriber in turn, in the publisher's task.

    ``publish`` returns once every subscriber has handled the event, so a relay marks an
    event published only after all its consumers succeeded: at least once for each of them.
    A failing subscriber does not stop the others. With ``metrics``, each handler's success
    or failure is counted per consumer and event type (the bus is the one place that sees
    every consumer, whatever it does inside).
    """

    def __init__(self, metrics: EventMetrics | None = None) -> None:
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._metrics = metrics

    def subscribe(self, event_type: str, consumer_name: str, handler: Handler) -> None:
        listed = self._subscriptions.setdefault(event_type, [])
        if any(s.consumer_name == consumer_name for s in listed):
            raise ValueError(f"{consumer_name} already consumes {event_type}")
        listed.append(Subscription(event_type, consumer_name, handler))

    def subscriptions(self) -> list[Subscription]:
        return [s for listed in self._subscriptions.values() for s in listed]

    async def publish(self, event: Event) -> None:
        failed: list[str] = []
        for subscription in self._subscriptions.get(event.get_type(), []):
            with handling(event):
                try:
                    await subscription.handler(event)
                except Exception:  # noqa: BLE001 - one failing consumer must not starve the others
                    _log.exception(
                        "consumer %s failed on %s %s", subscription.consumer_name,
                        event.get_type(), event.get_id())
                    failed.append(subscription.consumer_name)
                    if self._metrics is not None:
                        self._metrics.consumer_failed(subscription.consumer_name, event.get_type())
                else:
                    if self._metrics is not None:
                        self._metrics.consumed(subscription.consumer_name, event.get_type())
        if failed:
            raise DeliveryFailed(f"{event.get_id()} failed in {', '.join(failed)}")

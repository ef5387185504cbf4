"""The orders' wiring: the write side (service, saga, outbox relay), the read side (queries,
projections, read-your-writes) and their routes for one API version.

Any process that serves or operates orders (the monolith, the CLI's ``projections rebuild`` and
``events dead-letters``, a future orders service) builds it here. The catalog is reached only
through its client port, handed in by the composition root.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from archway.catalog.client import CatalogClient
from archway.config import Settings
from archway.kernel.db import Database
from archway.kernel.events.bus import Subscription
from archway.kernel.events.dead_letters import DeadLetterStore
from archway.kernel.events.plumbing import EventPlumbing
from archway.kernel.events.relay import OutboxRelay
from archway.kernel.http.fast_lane import FastRoute
from archway.kernel.http.versioning import ApiVersion
from archway.orders.client import InProcessOrdersClient
from archway.orders.consistency import ReadYourWrites
from archway.orders.consumers import SAGA_CONSUMER, SAGA_EVENTS, OrderSaga
from archway.orders.events import ORDER_EVENT_TYPES
from archway.orders.projections import OrderViewProjection, Projection
from archway.orders.queries import OrderQueries
from archway.orders.report_projections import CustomerSummaryProjection, ProductSalesProjection
from archway.orders.report_queries import ReportQueries
from archway.orders.rest import build_reports_router as reports_router
from archway.orders.rest import build_router as orders_router
from archway.orders.service import OrdersService
from archway.orders.store import OrderRepository, orders_dead_letters, orders_inbox, orders_outbox
from archway.orders.updates import OrderUpdates


@dataclass(frozen=True)
class ReadSide:
    read_your_writes: ReadYourWrites
    order_view: OrderViewProjection
    projections: tuple[Projection, ...]
    updates: OrderUpdates


@dataclass(frozen=True)
class OrdersModule:
    service: OrdersService[Any]
    saga: OrderSaga
    queries: OrderQueries
    report_queries: ReportQueries
    read_side: ReadSide
    relay: OutboxRelay
    subscriptions: tuple[Subscription, ...]

    @property
    def client(self) -> InProcessOrdersClient:
        """The orders' public port, for the contexts and adapters composed in this process."""
        return InProcessOrdersClient(self.queries)

    def routers(
        self, version: ApiVersion, route_class: type[APIRoute], fast_routes: list[FastRoute]
    ) -> list[APIRouter]:
        freshness = self.read_side.read_your_writes
        return [
            orders_router(
                version, self.service, self.queries, route_class, freshness,
                fast_routes=fast_routes),
            reports_router(version, self.report_queries, route_class, freshness),
        ]


def read_side(settings: Settings, db: Database) -> ReadSide:
    """The read models; each wakes read-your-writes waiters when it applies an event. Alone
    (no bus, no relay), it is what rebuilding the read models needs."""
    kinds = (OrderViewProjection, CustomerSummaryProjection, ProductSalesProjection)
    read_your_writes = ReadYourWrites(
        db, [kind.consumer for kind in kinds], timeout=settings.read_your_writes_timeout_seconds)
    updates = OrderUpdates()
    order_view = OrderViewProjection(
        db, on_applied=read_your_writes.notify, on_events=updates.applied)
    return ReadSide(read_your_writes, order_view, (
        order_view, CustomerSummaryProjection(db, on_applied=read_your_writes.notify),
        ProductSalesProjection(db, on_applied=read_your_writes.notify)), updates)


def wire(
    settings: Settings, db: Database, events: EventPlumbing, *, catalog: CatalogClient,
    admission: Callable[[], Awaitable[object]] | None = None,
) -> OrdersModule:
    """``admission`` is awaited before each command appends (the relays' back-pressure);
    none where no command is taken (the CLI)."""
    parked = DeadLetterStore(db, orders_dead_letters)
    relay = events.relay(orders_outbox, parked)
    service = OrdersService(
        db, catalog, orders=OrderRepository, on_commit=relay.nudge, admission=admission)
    saga = OrderSaga(db, service, on_commit=relay.nudge)
    reads = read_side(settings, db)
    subscriptions = (
        events.subscription(SAGA_CONSUMER, SAGA_EVENTS, saga.consumer, parked),
        *(events.subscription(p.consumer, ORDER_EVENT_TYPES, p.handle, parked)
          for p in reads.projections),
    )
    for projection in reads.projections:  # each read model's lag, read at scrape time
        events.metrics.watch_consumer(
            db, projection.consumer, orders_outbox, orders_inbox, ORDER_EVENT_TYPES)
    return OrdersModule(
        service=service, saga=saga, queries=OrderQueries(db), report_queries=ReportQueries(db),
        read_side=reads, relay=relay, subscriptions=subscriptions)

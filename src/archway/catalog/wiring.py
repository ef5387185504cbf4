"""The catalog's wiring: its service, its consumer of the orders' events, its outbox relay and
its routes for one API version.

Any process that serves or operates the catalog (the monolith, the CLI's ``seed``, a future
catalog service) builds it here, and nothing more than it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from archway.catalog.client import InProcessCatalogClient
from archway.catalog.consumers import CONSUMED, RESERVATIONS_CONSUMER, StockReservations
from archway.catalog.grpc import register as grpc_service
from archway.catalog.rest import build_router
from archway.catalog.service import CatalogService
from archway.catalog.store import CatalogRepository, catalog_dead_letters, catalog_outbox
from archway.config import Settings
from archway.kernel.db import Database
from archway.kernel.events.bus import Subscription
from archway.kernel.events.dead_letters import DeadLetterStore
from archway.kernel.events.plumbing import EventPlumbing
from archway.kernel.events.relay import OutboxRelay
from archway.kernel.grpc.server import Registration
from archway.kernel.http.fast_lane import FastRoute
from archway.kernel.http.versioning import ApiVersion


@dataclass(frozen=True)
class CatalogModule:
    settings: Settings
    service: CatalogService[Any]
    client: InProcessCatalogClient
    reservations: StockReservations
    relay: OutboxRelay
    subscriptions: tuple[Subscription, ...]

    def routers(
        self, version: ApiVersion, route_class: type[APIRoute], fast_routes: list[FastRoute]
    ) -> list[APIRouter]:
        return [build_router(
            version, self.service, route_class,
            max_age=self.settings.product_cache_max_age_seconds, fast_routes=fast_routes)]

    def grpc_service(self) -> Registration:
        return grpc_service(self.service)


def service(settings: Settings, db: Database) -> CatalogService[Any]:
    """The catalog's use cases alone (no events): what seeding needs."""
    return CatalogService(
        db, products=CatalogRepository, cache_ttl_seconds=settings.read_cache_ttl_seconds)


def wire(settings: Settings, db: Database, events: EventPlumbing) -> CatalogModule:
    catalog = service(settings, db)
    parked = DeadLetterStore(db, catalog_dead_letters)
    relay = events.relay(catalog_outbox, parked)
    reservations = StockReservations(db, catalog, on_commit=relay.nudge)
    return CatalogModule(
        settings=settings, service=catalog, client=InProcessCatalogClient(catalog),
        reservations=reservations, relay=relay,
        subscriptions=(events.subscription(
            RESERVATIONS_CONSUMER, CONSUMED, reservations.consumer, parked),))

"""The monolith: every context in one process, wired in-process, over one database.

:func:`build` makes the whole object graph from settings (tests pass their own settings or
swap a part by keyword); :func:`create_app` puts the HTTP adapters and policies on top.
Nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Scope

from archway.catalog.client import InProcessCatalogClient
from archway.catalog.consumers import CONSUMED as CATALOG_CONSUMES
from archway.catalog.consumers import RESERVATIONS_CONSUMER, StockReservations
from archway.catalog.event_tables import catalog_dead_letters, catalog_outbox
from archway.catalog.rest import build_router as catalog_router
from archway.catalog.service import CatalogService
from archway.catalog.store import CatalogRepository
from archway.config import ConfigurationError, Settings
from archway.identity.client import InProcessIdentityClient
from archway.identity.keys import KeyRing, TokenIssuer
from archway.identity.passwords import PasswordHasher
from archway.identity.rest import build_router as identity_router
from archway.identity.service import IdentityService
from archway.identity.store import UserRepository
from archway.kernel.auth.tokens import TokenVerifier, bearer_token
from archway.kernel.db import Database
from archway.kernel.errors import ArchwayError
from archway.kernel.events.bus import EventBus, InProcessBus, Subscription
from archway.kernel.events.dead_letters import (
    DeadLetter,
    DeadLetterOffice,
    DeadLetterStore,
    RetryOutcome,
)
from archway.kernel.events.lease import OutboxLease
from archway.kernel.events.metrics import EventMetrics
from archway.kernel.events.relay import OutboxRelay, Relays
from archway.kernel.heap import freeze_startup_heap
from archway.kernel.http.body_limit import BodyLimit
from archway.kernel.http.docs_pages import build_docs_router
from archway.kernel.http.fast_lane import FastLane, FastRoute
from archway.kernel.http.guard import BearerAuthenticator, guarded_route_class
from archway.kernel.http.idempotency import Idempotency
from archway.kernel.http.idempotency_store import IdempotencyStore
from archway.kernel.http.landing import DemoAccount, Link, build_landing_router
from archway.kernel.http.openapi import versioned_openapi
from archway.kernel.http.ops import add_routes, build_ops_router
from archway.kernel.http.policies import DeprecationPolicy, HttpPolicies
from archway.kernel.http.problems import install_problem_handlers
from archway.kernel.http.responses import JsonResponse
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.migrate import unapplied
from archway.kernel.observability.metrics import HttpMetrics
from archway.orders import events as order_events
from archway.orders.consistency import ReadYourWrites
from archway.orders.projections import OrderViewProjection, Projection
from archway.orders.queries import OrderQueries
from archway.orders.report_projections import CustomerSummaryProjection, ProductSalesProjection
from archway.orders.report_queries import ReportQueries
from archway.orders.reports_rest import build_router as reports_router
from archway.orders.rest import build_router as orders_router
from archway.orders.service import SAGA_CONSUMER, SAGA_EVENTS, OrdersService
from archway.orders.store import OrderRepository, orders_dead_letters, orders_inbox, orders_outbox
from archway.topologies.demo import DEMO_ACCOUNTS, customer_token_command

CONTEXTS = ("kernel", "identity", "catalog", "orders")

# Every public URL of the monolith, for the landing page (GET /) and `archway dev`'s banner.
PUBLIC_LINKS = (
    Link("rest-v1", "REST v1", "/api/v1/products"), Link("rest-v2", "REST v2", "/api/v2/products"),
    Link("swagger-ui", "Swagger UI", "/docs"), Link("redoc", "ReDoc", "/redoc"),
    Link("openapi-v1", "OpenAPI v1", "/openapi/v1.json"),
    Link("openapi-v2", "OpenAPI v2", "/openapi/v2.json"),
    Link("jwks", "JWKS", "/.well-known/jwks.json"), Link("healthz", "Health", "/healthz"),
    Link("readyz", "Readiness", "/readyz"), Link("metrics", "Metrics", "/metrics"),
)


@dataclass
class Monolith:
    settings: Settings
    db: Database
    metrics: HttpMetrics
    keys: KeyRing
    verifier: TokenVerifier
    hasher: PasswordHasher
    identity: IdentityService[Any]
    catalog: CatalogService[Any]
    bus: EventBus
    relays: Relays
    orders: OrdersService[Any]
    order_queries: OrderQueries
    order_view: OrderViewProjection
    reservations: StockReservations
    report_queries: ReportQueries
    read_your_writes: ReadYourWrites
    projections: tuple[Projection, ...]
    idempotency: IdempotencyStore
    dead_letters: DeadLetterOffice
    subscriptions: tuple[Subscription, ...]
    _subscribed: bool = field(default=False, init=False)

    async def start(self, *, relays: bool = True) -> None:
        """Subscribe every consumer (once) and start the bus, then the relays: nothing is
        published before the bus knows who consumes it."""
        if not self._subscribed:
            for subscription in self.subscriptions:
                await self.bus.subscribe(
                    subscription.consumer_name, subscription.event_types, subscription.handler)
            self._subscribed = True
        await self.bus.start()
        if relays:
            self.relays.start()

    async def close(self) -> None:
        await self.relays.stop()
        await self.bus.stop()
        await self.idempotency.answers.stop()
        self.hasher.close()
        await self.db.dispose()


def build(
    settings: Settings, *, db: Database | None = None, bus: EventBus | None = None
) -> Monolith:
    db = db or Database(
        settings.database_url, pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout_seconds,
        echo=settings.db_echo,
    )
    keys = KeyRing(db, refresh_seconds=settings.key_refresh_seconds)
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib,
        workers=settings.password_hash_workers,
        queue_timeout=settings.password_hash_queue_timeout_seconds,
    )
    issuer = TokenIssuer(
        keys, issuer=settings.issuer, audience=settings.audience,
        default_ttl=settings.access_token_ttl_seconds,
    )
    verifier = TokenVerifier(keys, issuer=settings.issuer, audience=settings.audience)
    metrics = HttpMetrics()
    metrics.set_pool_reader(db.pool_usage)
    catalog = CatalogService(
        db, products=CatalogRepository, cache_ttl_seconds=settings.read_cache_ttl_seconds)

    # Events: one outbox and relay per context, one bus, the subscriptions listed one by one.
    # Metrics for them on the app's registry; a lease per outbox lets replicas share it.
    event_metrics = EventMetrics(metrics.registry)
    metrics.add_refresher(event_metrics.refresh)
    bus = bus or InProcessBus(event_metrics)
    orders_relay = OutboxRelay(
        db, orders_outbox, bus, poll_interval=settings.outbox_poll_seconds,
        batch_size=settings.outbox_batch_size,
        lease=OutboxLease(db, orders_outbox.name), metrics=event_metrics,
        max_lag=settings.command_backpressure_lag)
    catalog_relay = OutboxRelay(
        db, catalog_outbox, bus, poll_interval=settings.outbox_poll_seconds,
        batch_size=settings.outbox_batch_size,
        lease=OutboxLease(db, catalog_outbox.name), metrics=event_metrics,
        max_lag=settings.command_backpressure_lag)
    relays = Relays([orders_relay, catalog_relay], metrics=event_metrics)
    orders = OrdersService(
        db, InProcessCatalogClient(catalog), orders=OrderRepository, on_commit=orders_relay.nudge,
        admission=lambda: relays.keeping_up(settings.command_backpressure_seconds))
    reservations = StockReservations(db, catalog, on_commit=catalog_relay.nudge)
    # Read models: each wakes read-your-writes waiters when it applies an event.
    kinds = (OrderViewProjection, CustomerSummaryProjection, ProductSalesProjection)
    read_your_writes = ReadYourWrites(
        db, [kind.consumer for kind in kinds], timeout=settings.read_your_writes_timeout_seconds)
    order_view = OrderViewProjection(db, on_applied=read_your_writes.notify)
    projections: tuple[Projection, ...] = (
        order_view, CustomerSummaryProjection(db, on_applied=read_your_writes.notify),
        ProductSalesProjection(db, on_applied=read_your_writes.notify))
    # Each consumer parks what fails it ARCHWAY_EVENT_MAX_ATTEMPTS times in its own context's
    # dead letters, so that no event blocks the ones after it.
    dead_letters = DeadLetterOffice(
        max_attempts=settings.event_max_attempts, metrics=event_metrics)
    metrics.add_refresher(dead_letters.refresh_metrics)
    orders_parked = DeadLetterStore(db, orders_dead_letters)
    catalog_parked = DeadLetterStore(db, catalog_dead_letters)
    subscriptions = [
        Subscription(RESERVATIONS_CONSUMER, frozenset(CATALOG_CONSUMES), dead_letters.guard(
            RESERVATIONS_CONSUMER, reservations.consumer, catalog_parked)),
        Subscription(SAGA_CONSUMER, frozenset(SAGA_EVENTS), dead_letters.guard(
            SAGA_CONSUMER, orders.saga, orders_parked)),
        *(Subscription(p.consumer, frozenset(order_events.ORDER_EVENT_TYPES), dead_letters.guard(
            p.consumer, p.handle, orders_parked)) for p in projections),
    ]
    for projection in projections:  # each read model's lag, read at scrape time
        event_metrics.watch_consumer(
            db, projection.consumer, orders_outbox, orders_inbox, order_events.ORDER_EVENT_TYPES)

    return Monolith(
        settings=settings, db=db, metrics=metrics, keys=keys, verifier=verifier, hasher=hasher,
        identity=IdentityService(
            db, hasher, keys, issuer, users=UserRepository,
            cache_ttl_seconds=settings.read_cache_ttl_seconds),
        catalog=catalog, bus=bus, relays=relays, orders=orders,
        order_queries=OrderQueries(db), order_view=order_view, reservations=reservations,
        report_queries=ReportQueries(db), read_your_writes=read_your_writes,
        projections=projections,
        idempotency=IdempotencyStore(
            db, settings.idempotency_ttl_seconds,
            max_queued_answers=settings.idempotency_max_queued_answers),
        dead_letters=dead_letters, subscriptions=tuple(subscriptions),
    )


def create_app(settings: Settings, *, graph: Monolith | None = None) -> FastAPI:
    graph = graph or build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        late = await unapplied(graph.db, CONTEXTS)
        if late:
            await graph.close()
            raise ConfigurationError(
                f"the database at {graph.db.display_url} is not migrated ({', '.join(late)}): "
                "run `archway db migrate` first")
        await graph.keys.ensure_key()
        await graph.start()
        graph.idempotency.answers.start()
        freeze_startup_heap()
        try:
            yield
        finally:
            await graph.close()

    app = FastAPI(
        title="Archway", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan,
    )
    app.state.graph = graph
    install_problem_handlers(app)
    route_class = guarded_route_class(
        BearerAuthenticator(
            graph.verifier, user_exists=InProcessIdentityClient(graph.identity).user_exists))
    add_routes(app, build_ops_router(
        graph.metrics, {"database": graph.db.ping, **graph.relays.readiness_checks()},
        details={"dead_letters": graph.dead_letters.readiness}))
    fast: list[FastRoute] = []
    for version in ApiVersion:
        add_routes(app, catalog_router(
            version, graph.catalog, route_class, max_age=settings.product_cache_max_age_seconds,
            fast_routes=fast))
        add_routes(app, identity_router(version, graph.identity, route_class, fast_routes=fast))
        add_routes(app, orders_router(
            version, graph.orders, graph.order_queries, route_class, graph.read_your_writes,
            fast_routes=fast))
        add_routes(app, reports_router(
            version, graph.report_queries, route_class, graph.read_your_writes))
    _install_public_endpoints(app, graph)

    if settings.fast_lane:  # innermost: inside every policy, in front of FastAPI's routing
        app.add_middleware(FastLane, routes=fast, declared=app.routes)
    app.add_middleware(
        Idempotency, store=graph.idempotency, owner_of=_owner_of(graph.verifier),
        routes=app.routes)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match",
                           "If-None-Match", "API-Version", "X-Request-ID", "traceparent",
                           "Consistency-Token"],
            expose_headers=["Location", "ETag", "Link", "API-Version", "X-Request-ID",
                            "Deprecation", "Sunset", "Idempotent-Replayed",
                            "Consistency-Token", "Consistency"],
        )
    app.add_middleware(
        HttpPolicies, metrics=graph.metrics, access_log=settings.access_log,
        deprecation=DeprecationPolicy(settings.api_v1_deprecated_at, settings.api_v1_sunset),
    )
    return app


def _install_public_endpoints(app: FastAPI, graph: Monolith) -> None:
    documents: dict[ApiVersion, bytes] = {}

    def openapi_json(version: ApiVersion) -> Response:
        if version not in documents:
            documents[version] = bytes(JsonResponse(
                versioned_openapi(app, version, graph.settings.issuer)).body)
        return Response(documents[version], media_type="application/json")

    shown = graph.settings.show_demo_accounts
    add_routes(app, build_landing_router(
        "Archway", PUBLIC_LINKS,
        [DemoAccount(role, email, password) for role, email, password, _ in DEMO_ACCOUNTS]
        if shown else [],
        customer_token_command()))

    @app.get("/openapi/v1.json", include_in_schema=False)
    async def openapi_v1() -> Response:
        return openapi_json(ApiVersion.V1)

    @app.get("/openapi/v2.json", include_in_schema=False)
    async def openapi_v2() -> Response:
        return openapi_json(ApiVersion.V2)

    add_routes(app, build_docs_router(
        "Archway API", [("v2", "/openapi/v2.json"), ("v1", "/openapi/v1.json")],
        redoc_spec="/openapi/v2.json", client_id="archway-docs"))

    @app.get("/.well-known/jwks.json", include_in_schema=False)
    async def jwks() -> Response:
        return JsonResponse(
            await graph.keys.jwks(), headers={"cache-control": "public, max-age=60"})


def _owner_of(verifier: TokenVerifier):  # type: ignore[no-untyped-def]
    """Idempotency keys belong to the token's subject, else to the client's address."""

    async def owner_of(scope: Scope) -> str:
        authorization = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
        try:
            token = bearer_token(authorization)
            if token is not None:
                return "sub:" + (await verifier.verify(token)).subject
        except ArchwayError:
            pass
        client = scope.get("client")
        return "ip:" + (client[0] if client else "unknown")

    return owner_of


async def migrate_database(settings: Settings, contexts: tuple[str, ...]) -> None:
    from archway.kernel.migrate import migrate

    db = Database(settings.database_url)
    try:
        await migrate(db, contexts)
        await KeyRing(db).ensure_key()
    finally:
        await db.dispose()


async def seed_demo(
    settings: Settings, accounts: tuple[tuple[str, str, str, str], ...]
) -> list[str]:
    """The demo accounts and products; existing ones are left as they are."""
    from archway.catalog.seed import seed_catalog
    from archway.kernel.errors import Conflict

    graph = build(settings)
    lines = []
    try:
        for role, email, password, name in accounts:
            with suppress(Conflict):  # already there: left as it is
                await graph.identity.register(email, password, name, frozenset({role}))
            lines.append(f"{role:<8} {email} / {password}")
        await seed_catalog(graph.catalog)
    finally:
        await graph.close()
    return lines


async def dev_token(settings: Settings, email: str, scopes: list[str], ttl: int | None) -> str:
    graph = build(settings)
    try:
        return await graph.identity.issue_dev_token(email, scopes, ttl)
    finally:
        await graph.close()


async def rotate_keys(settings: Settings) -> str:
    graph = build(settings)
    try:
        return await graph.keys.rotate()
    finally:
        await graph.close()


async def rebuild_projections(settings: Settings) -> list[tuple[str, int]]:
    """Rebuild every read model from the orders' event log, one transaction each; safe while
    the deployment runs (see :func:`archway.orders.projections.replay`)."""
    graph = build(settings)
    try:
        return [(p.consumer, await p.rebuild()) for p in graph.projections]
    finally:
        await graph.close()


async def list_dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every event a consumer parked, oldest first (no relay or HTTP app is started)."""
    graph = build(settings)
    try:
        return await graph.dead_letters.parked()
    finally:
        await graph.close()


async def retry_dead_letter(
    settings: Settings, letter_id: str
) -> tuple[RetryOutcome, DeadLetter | None]:
    """Deliver one parked event to its consumer again (see ``DeadLetterOffice.retry``)."""
    graph = build(settings)
    try:
        return await graph.dead_letters.retry(letter_id)
    finally:
        await graph.close()

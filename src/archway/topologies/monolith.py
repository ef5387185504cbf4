"""The monolith: every context in one process, wired in-process, over one database.

:func:`build` composes the contexts' wiring (``identity``, ``catalog`` and ``orders``'s
``wiring.wire``) over one database and one event plumbing (tests pass their own settings or swap
the database or bus by keyword); :func:`create_app` puts their routers under the kernel's HTTP
service defaults. Nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from archway.catalog.consumers import StockReservations
from archway.catalog.service import CatalogService
from archway.catalog.wiring import CatalogModule
from archway.catalog.wiring import wire as wire_catalog
from archway.config import ConfigurationError, Settings
from archway.graphql.endpoint import build_router as build_graphql_router
from archway.identity.api_keys import ApiKeyService
from archway.identity.client import InProcessIdentityClient
from archway.identity.graphql import AUTH_MUTATIONS
from archway.identity.keys import KeyRing
from archway.identity.passwords import PasswordHasher
from archway.identity.service import IdentityService
from archway.identity.wiring import IdentityModule
from archway.identity.wiring import wire as wire_identity
from archway.kernel.auth.callers import Callers
from archway.kernel.auth.tokens import TokenVerifier
from archway.kernel.db import Database
from archway.kernel.events.bus import EventBus, Subscription
from archway.kernel.events.dead_letters import (
    DeadLetterOffice,
)
from archway.kernel.events.metrics import EventMetrics
from archway.kernel.events.relays import Relays
from archway.kernel.graphql.rate_limits import OperationRateLimits
from archway.kernel.grpc.limits import CallLimits
from archway.kernel.grpc.server import Authenticator, GrpcServer
from archway.kernel.heap import freeze_startup_heap
from archway.kernel.http.caller import CallerIdentifier
from archway.kernel.http.fast_lane import FastRoute
from archway.kernel.http.guard import BearerAuthenticator, guarded_route_class
from archway.kernel.http.idempotency_store import IdempotencyStore
from archway.kernel.http.landing import DemoAccount, Link
from archway.kernel.http.policies import DeprecationPolicy
from archway.kernel.http.service_defaults import HttpOptions, PublicPages, apply_service_defaults
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.migrate import unapplied
from archway.kernel.observability.metrics import HttpMetrics
from archway.kernel.proxies import TrustedProxies
from archway.kernel.ratelimit.limiter import RateLimiter
from archway.orders.consistency import ReadYourWrites
from archway.orders.consumers import OrderSaga
from archway.orders.projections import OrderViewProjection, Projection
from archway.orders.queries import OrderQueries
from archway.orders.report_queries import ReportQueries
from archway.orders.service import OrdersService
from archway.orders.wiring import OrdersModule
from archway.orders.wiring import wire as wire_orders
from archway.topologies.demo import DEMO_ACCOUNTS, DOCS_CLIENT_ID, customer_token_command
from archway.topologies.shared import CONTEXTS, database, event_plumbing, rate_limiter

# Every public URL of the monolith, for the landing page (GET /) and `archway dev`'s banner.
PUBLIC_LINKS = (
    Link("rest-v1", "REST v1", "/api/v1/products"), Link("rest-v2", "REST v2", "/api/v2/products"),
    Link("swagger-ui", "Swagger UI", "/docs"), Link("redoc", "ReDoc", "/redoc"),
    Link("graphiql", "GraphiQL", "/graphql"),
    Link("openapi-v1", "OpenAPI v1", "/openapi/v1.json"),
    Link("openapi-v2", "OpenAPI v2", "/openapi/v2.json"),
    Link("jwks", "JWKS", "/.well-known/jwks.json"), Link("healthz", "Health", "/healthz"),
    Link("readyz", "Readiness", "/readyz"), Link("metrics", "Metrics", "/metrics"),
)


def grpc_link(settings: Settings) -> Link:
    host, port = grpc_address(settings)
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else f"[{host}]" if ":" in host else host
    return Link("grpc", "gRPC", f"grpc://{shown}:{port}")


@dataclass
class Monolith:
    settings: Settings
    db: Database
    metrics: HttpMetrics
    keys: KeyRing
    verifier: TokenVerifier
    hasher: PasswordHasher
    identity: IdentityService[Any]
    api_keys: ApiKeyService[Any]
    catalog: CatalogService[Any]
    bus: EventBus
    relays: Relays
    orders: OrdersService[Any]
    saga: OrderSaga
    order_queries: OrderQueries
    order_view: OrderViewProjection
    reservations: StockReservations
    report_queries: ReportQueries
    read_your_writes: ReadYourWrites
    projections: tuple[Projection, ...]
    idempotency: IdempotencyStore
    dead_letters: DeadLetterOffice
    subscriptions: tuple[Subscription, ...]
    # Their routes, in this order (the OpenAPI documents list paths in it).
    modules: tuple[CatalogModule, IdentityModule, OrdersModule]
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
        await self.api_keys.settle()  # the last uses recorded behind, before the pool goes
        self.hasher.close()
        await self.identity.sign_ins.close()
        await self.db.dispose()


def build(
    settings: Settings, *, db: Database | None = None, bus: EventBus | None = None
) -> Monolith:
    db = db or database(settings)
    metrics = HttpMetrics()
    metrics.set_pool_reader(db.pool_usage)
    event_metrics = EventMetrics(metrics.registry)
    metrics.add_refresher(event_metrics.refresh)
    events = event_plumbing(settings, db, event_metrics, bus)
    metrics.add_refresher(events.dead_letters.refresh_metrics)

    identity = wire_identity(settings, db)
    catalog = wire_catalog(settings, db, events)
    orders = wire_orders(
        settings, db, events, catalog=catalog.client,
        admission=lambda: relays.keeping_up(settings.command_backpressure_seconds))
    relays = Relays(
        [orders.relay, catalog.relay], metrics=event_metrics, wakeups=events.wakeups)
    reads = orders.read_side
    return Monolith(
        settings=settings, db=db, metrics=metrics, keys=identity.keys, verifier=identity.verifier,
        hasher=identity.hasher, identity=identity.service, api_keys=identity.api_keys,
        catalog=catalog.service,
        bus=events.bus, relays=relays, orders=orders.service, saga=orders.saga,
        order_queries=orders.queries, order_view=reads.order_view,
        reservations=catalog.reservations, report_queries=orders.report_queries,
        read_your_writes=reads.read_your_writes, projections=reads.projections,
        idempotency=IdempotencyStore(
            db, settings.idempotency_ttl_seconds,
            max_queued_answers=settings.idempotency_max_queued_answers),
        dead_letters=events.dead_letters,
        subscriptions=(*catalog.subscriptions, *orders.subscriptions),
        modules=(catalog, identity, orders),
    )


def grpc_server(
    graph: Monolith,
    host: str,
    port: int,
    *,
    limiter: RateLimiter | None = None,
    trusted_proxies: Sequence[str] = (),
) -> GrpcServer:
    """The contexts' gRPC services on ``host:port`` (0: a free port), guarded like REST and,
    given the app's ``limiter``, counted by it as REST's calls are (behind
    ``trusted_proxies``, by the forwarded client's address)."""
    limits = None if limiter is None else CallLimits(
        limiter, Callers(graph.verifier, graph.api_keys.verify),
        proxies=TrustedProxies(trusted_proxies))
    return GrpcServer(
        host, port,
        Authenticator(
            graph.verifier, user_exists=InProcessIdentityClient(graph.identity).subject_exists),
        [module.grpc_service() for module in graph.modules], limits=limits,
        metrics=graph.metrics)


def grpc_address(settings: Settings) -> tuple[str, int]:
    return settings.grpc_host or settings.http_host, settings.grpc_port


def create_app(
    settings: Settings, *, graph: Monolith | None = None, serve_grpc: bool = False
) -> FastAPI:
    """The monolith's app. Its rate limiter is its own (``app.state.rate_limiter``; the
    lifespan closes it), so that apps built on one graph with other settings count apart.
    ``serve_grpc``: the app's lifespan also runs the gRPC server, in this process, on
    ``ARCHWAY_GRPC_HOST`` (default the HTTP host) and ``ARCHWAY_GRPC_PORT`` (50051)."""
    graph = graph or build(settings)
    limiter = rate_limiter(settings, graph.metrics)
    grpc = grpc_server(
        graph, *grpc_address(settings), limiter=limiter,
        trusted_proxies=settings.trusted_proxies) if serve_grpc else None

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
        if grpc is not None:
            try:
                await grpc.start()
            except (OSError, RuntimeError) as exc:  # grpcio raises RuntimeError on a bad bind
                await graph.close()
                raise ConfigurationError(
                    f"cannot serve gRPC on {grpc.host}:{grpc.port}: {exc}") from None
        freeze_startup_heap()
        try:
            yield
        finally:
            if limiter is not None:
                await limiter.close()
            if grpc is not None:
                await grpc.stop()
            await graph.close()

    app = FastAPI(
        title="Archway", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan,
    )
    app.state.graph = graph
    app.state.rate_limiter = limiter
    authenticator = BearerAuthenticator(
        graph.verifier, user_exists=InProcessIdentityClient(graph.identity).subject_exists,
        api_keys=graph.api_keys.verify)
    route_class = guarded_route_class(authenticator)
    fast: list[FastRoute] = []
    routers = [router for version in ApiVersion for module in graph.modules
               for router in module.routers(version, route_class, fast)]
    _, identity, _ = graph.modules
    routers += identity.oauth_routers(limiter)
    routers.append(build_graphql_router(
        {"identity": graph.identity, "catalog": graph.catalog, "orders": graph.orders,
         "order_queries": graph.order_queries, "report_queries": graph.report_queries},
        authenticator, rate_limits=None if limiter is None else OperationRateLimits(
            limiter, CallerIdentifier(graph.verifier, graph.api_keys.verify),
            auth_mutations=AUTH_MUTATIONS)))
    apply_service_defaults(
        app, HttpOptions(
            max_body_bytes=settings.max_body_bytes, access_log=settings.access_log,
            deprecation=DeprecationPolicy(settings.api_v1_deprecated_at, settings.api_v1_sunset),
            cors_allow_origins=settings.cors_allow_origins, fast_lane=settings.fast_lane,
            hsts=settings.hsts, trusted_proxies=settings.trusted_proxies),
        routers=routers, metrics=graph.metrics,
        readiness={"database": graph.db.ping, **graph.relays.readiness_checks()},
        readiness_details={"dead_letters": graph.dead_letters.readiness},
        idempotency=graph.idempotency, verifier=graph.verifier, fast_routes=fast,
        rate_limiter=limiter, api_keys=graph.api_keys.verify,
        counted_by_route=identity.counted_by_route,
        pages=PublicPages(
            title="Archway", token_command=customer_token_command(),
            issuer=settings.issuer, jwks=graph.keys.jwks, docs_client_id=DOCS_CLIENT_ID,
            links=PUBLIC_LINKS if grpc is None else (*PUBLIC_LINKS, grpc_link(settings)),
            demo_accounts=[DemoAccount(role, email, password)
                           for role, email, password, _ in DEMO_ACCOUNTS]
            if settings.show_demo_accounts else []))
    return app

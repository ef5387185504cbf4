"""The HTTP service defaults: every policy an Archway HTTP process has, put on an app in one call.

Like eShop's ``AddServiceDefaults``: the monolith calls :func:`apply_service_defaults`, and so
will any other HTTP process (a context on its own, the gateway's admin, a Lambda), so that they
all answer problems, health, readiness, metrics, rate limits, idempotency, body limits, CORS,
versioning, HEAD/405 and the security headers identically. What differs between processes is
only what is passed in: their routers, their readiness checks, their stores.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI
from starlette.responses import Response
from starlette.types import Scope

from archway.kernel.auth.api_keys import ApiKeyVerifier
from archway.kernel.auth.tokens import TokenVerifier
from archway.kernel.http.body_limit import BodyLimit
from archway.kernel.http.caller import CallerIdentifier
from archway.kernel.http.cors import AllowListCors
from archway.kernel.http.docs_pages import build_docs_router
from archway.kernel.http.fast_lane import FastLane, FastRoute
from archway.kernel.http.idempotency import Idempotency
from archway.kernel.http.idempotency_store import IdempotencyStore
from archway.kernel.http.landing import DemoAccount, Link, build_landing_router
from archway.kernel.http.openapi import versioned_openapi
from archway.kernel.http.ops import ReadinessCheck, ReadinessDetail, add_routes, build_ops_router
from archway.kernel.http.policies import DeprecationPolicy, HttpPolicies
from archway.kernel.http.problems import install_problem_handlers
from archway.kernel.http.proxies import ForwardedClients
from archway.kernel.http.rate_limits import RateLimits
from archway.kernel.http.responses import JsonResponse
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.observability.metrics import HttpMetrics
from archway.kernel.proxies import TrustedProxies
from archway.kernel.ratelimit.limiter import RateLimiter

CORS_ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_ALLOW_HEADERS = (
    "Authorization", "Content-Type", "Idempotency-Key", "If-Match", "If-None-Match",
    "API-Version", "X-Request-ID", "traceparent", "Consistency-Token")
CORS_EXPOSE_HEADERS = (
    "Location", "ETag", "Link", "API-Version", "X-Request-ID", "Deprecation", "Sunset",
    "Idempotent-Replayed", "Consistency-Token", "Consistency", "RateLimit-Policy", "RateLimit",
    "Retry-After")


@dataclass(frozen=True)
class HttpOptions:
    """The settings-like knobs of the policies (each process reads them from its Settings)."""

    max_body_bytes: int
    access_log: bool
    deprecation: DeprecationPolicy
    cors_allow_origins: Sequence[str] = ()
    fast_lane: bool = True
    hsts: bool = False  # HSTS on every answer, not only on https requests (a TLS proxy in front)
    trusted_proxies: Sequence[str] = ()  # whose X-Forwarded-For is believed (kernel.proxies)


@dataclass(frozen=True)
class PublicPages:
    """What a public-facing process shows besides its API: ``GET /``, one OpenAPI document per
    version, Swagger UI and ReDoc, and the JWKS its tokens are checked with."""

    title: str
    links: Sequence[Link]
    token_command: str
    issuer: str
    jwks: Callable[[], Awaitable[Mapping[str, object]]]
    docs_client_id: str | None
    demo_accounts: Sequence[DemoAccount] = field(default_factory=tuple)


def apply_service_defaults(
    app: FastAPI,
    options: HttpOptions,
    *,
    routers: Iterable[APIRouter],
    metrics: HttpMetrics,
    readiness: Mapping[str, ReadinessCheck],
    readiness_details: Mapping[str, ReadinessDetail] | None = None,
    idempotency: IdempotencyStore,
    verifier: TokenVerifier,
    fast_routes: Sequence[FastRoute] = (),
    pages: PublicPages | None = None,
    rate_limiter: RateLimiter | None = None,
    api_keys: ApiKeyVerifier | None = None,
    counted_by_route: Collection[tuple[str, str]] = (),
) -> None:
    """Put the problem handlers, the ops routes, ``routers``, the public pages and the
    middleware on ``app``. The order is the contract: routes first (ops, then the API, then the
    pages), then the middleware from the innermost (FastLane, in front of FastAPI's routing and
    inside every policy) to the outermost (HttpPolicies: request ids, versions, metrics, the
    last-resort 500, HEAD/405). RateLimits (when a ``rate_limiter`` is given) sits outside every
    middleware that does work for a request and inside CORS and HttpPolicies, so each request
    is counted first and every answer, a refusal included, is decorated by both; except the
    ``(method, path)`` pairs of ``counted_by_route``, whose routes count their own requests."""
    identify = CallerIdentifier(verifier, api_keys)
    readiness, readiness_details = dict(readiness), dict(readiness_details or {})
    if rate_limiter is not None:
        readiness_details["rate_limits"] = rate_limiter.readiness
        if rate_limiter.shared and not rate_limiter.fail_open:  # down: it refuses every call
            readiness["rate_limits"] = rate_limiter.reachable
    install_problem_handlers(app)
    add_routes(app, build_ops_router(metrics, readiness, details=readiness_details))
    for router in routers:
        add_routes(app, router)
    if pages is not None:
        _install_public_pages(app, pages)

    if options.fast_lane:
        app.add_middleware(FastLane, routes=fast_routes, declared=app.routes)
    app.add_middleware(
        Idempotency, store=idempotency, owner_of=idempotency_owner(identify), routes=app.routes)
    app.add_middleware(BodyLimit, max_bytes=options.max_body_bytes)
    if rate_limiter is not None:
        app.add_middleware(RateLimits, limiter=rate_limiter, identify=identify,
                           counted_by_route=counted_by_route)
    if options.cors_allow_origins:
        app.add_middleware(
            AllowListCors, allow_origins=list(options.cors_allow_origins),
            allow_methods=list(CORS_ALLOW_METHODS), allow_headers=list(CORS_ALLOW_HEADERS),
            expose_headers=list(CORS_EXPOSE_HEADERS))
    app.add_middleware(
        HttpPolicies, metrics=metrics, access_log=options.access_log,
        deprecation=options.deprecation, hsts=options.hsts)
    if options.trusted_proxies:  # outermost: every policy keys and logs the forwarded client
        app.add_middleware(ForwardedClients, proxies=TrustedProxies(options.trusted_proxies))


def idempotency_owner(identify: CallerIdentifier) -> Callable[[Scope], Awaitable[str]]:
    """Idempotency keys belong to the caller (:mod:`.caller`): the token's subject, else the
    client's address; the rate limits key by the same caller."""

    async def owner_of(scope: Scope) -> str:
        return (await identify(scope)).key

    return owner_of


def _install_public_pages(app: FastAPI, pages: PublicPages) -> None:
    documents: dict[ApiVersion, bytes] = {}

    def openapi_json(version: ApiVersion) -> Response:
        if version not in documents:  # built once, from the routes as they are at first ask
            documents[version] = bytes(JsonResponse(
                versioned_openapi(app, version, pages.issuer)).body)
        return Response(documents[version], media_type="application/json")

    add_routes(app, build_landing_router(
        pages.title, pages.links, pages.demo_accounts, pages.token_command))

    @app.get("/openapi/v1.json", include_in_schema=False)
    async def openapi_v1() -> Response:
        return openapi_json(ApiVersion.V1)

    @app.get("/openapi/v2.json", include_in_schema=False)
    async def openapi_v2() -> Response:
        return openapi_json(ApiVersion.V2)

    add_routes(app, build_docs_router(
        f"{pages.title} API", [("v2", "/openapi/v2.json"), ("v1", "/openapi/v1.json")],
        redoc_spec="/openapi/v2.json", client_id=pages.docs_client_id, issuer=pages.issuer))

    @app.get("/.well-known/jwks.json", include_in_schema=False)
    async def jwks() -> Response:
        return JsonResponse(await pages.jwks(), headers={"cache-control": "public, max-age=60"})

"""Identity's wiring: its object graph from the settings, and its routes for one API version.

Any process that serves or operates identity (the monolith, the CLI's ``token`` and
``keys rotate``, a future identity service) builds it here, and nothing more than it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from archway.config import Settings
from archway.identity.api_key_store import ApiKeyRepository
from archway.identity.api_keys import ApiKeyService
from archway.identity.api_keys_rest import build_api_keys_router
from archway.identity.client import InProcessIdentityClient
from archway.identity.grpc import register as grpc_service
from archway.identity.keys import KeyRing, TokenIssuer
from archway.identity.oauth import AuthorizationServer
from archway.identity.oauth_rest import COUNTED_BY_ROUTE, build_oauth_router
from archway.identity.passwords import PasswordHasher
from archway.identity.rest import build_router
from archway.identity.revoked_tokens import Denylist
from archway.identity.service import IdentityService
from archway.identity.sign_ins import SignInPolicy, SignInThrottle
from archway.identity.store import (
    AuthorizationCodeRepository,
    ClientRepository,
    RefreshTokenRepository,
    RevokedTokenRepository,
    UserRepository,
)
from archway.kernel.auth.tokens import TokenVerifier
from archway.kernel.db import Database
from archway.kernel.grpc.server import Registration
from archway.kernel.http.fast_lane import FastRoute
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.ratelimit.limiter import RateLimiter
from archway.kernel.ratelimit.windows import EventLog, MemoryWindows, RedisWindows


@dataclass(frozen=True)
class IdentityModule:
    keys: KeyRing
    hasher: PasswordHasher
    verifier: TokenVerifier
    service: IdentityService[Any]
    client: InProcessIdentityClient
    oauth: AuthorizationServer
    api_keys: ApiKeyService[Any]

    def routers(
        self, version: ApiVersion, route_class: type[APIRoute], fast_routes: list[FastRoute]
    ) -> list[APIRouter]:
        return [build_router(version, self.service, route_class, fast_routes=fast_routes),
                build_api_keys_router(version, self.api_keys, route_class)]

    def oauth_routers(self, limiter: RateLimiter | None = None) -> list[APIRouter]:
        """The authorization server's routes (``/oauth/…``, its RFC 8414 metadata): outside
        the versioned API, authenticated by client credentials rather than bearer tokens.
        With ``limiter``, the token route counts its own requests: the edge must pass
        :attr:`counted_by_route` through."""
        return [build_oauth_router(self.oauth, limiter)]

    counted_by_route = COUNTED_BY_ROUTE

    def grpc_service(self) -> Registration:
        return grpc_service(self.service)

    def close(self) -> None:
        self.hasher.close()


def wire(settings: Settings, db: Database) -> IdentityModule:
    keys = KeyRing(db, refresh_seconds=settings.key_refresh_seconds)
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib,
        workers=settings.password_hash_workers,
        queue_timeout=settings.password_hash_queue_timeout_seconds,
    )
    sign_ins = SignInThrottle(_failures_log(settings), SignInPolicy(
        failures_before_delay=settings.login_failures_before_delay,
        window_seconds=settings.login_failure_window_seconds,
        max_delay_seconds=settings.login_max_delay_seconds,
        failures_per_address=settings.login_failures_per_address))
    issuer = TokenIssuer(
        keys, issuer=settings.issuer, audience=settings.audience,
        default_ttl=settings.access_token_ttl_seconds,
    )
    service = IdentityService(
        db, hasher, keys, issuer, users=UserRepository, clients=ClientRepository,
        refresh_tokens=RefreshTokenRepository, codes=AuthorizationCodeRepository,
        refresh_token_ttl_seconds=settings.refresh_token_ttl_seconds,
        cache_ttl_seconds=settings.read_cache_ttl_seconds, sign_ins=sign_ins)
    denylist = Denylist(db, RevokedTokenRepository,
                        refresh_seconds=settings.read_cache_ttl_seconds)
    verifier = TokenVerifier(keys, issuer=settings.issuer, audience=settings.audience,
                             denylist=denylist)
    return IdentityModule(
        keys=keys, hasher=hasher, verifier=verifier,
        service=service, client=InProcessIdentityClient(service),
        oauth=AuthorizationServer(service, verifier, issuer=settings.issuer,
                                  denylist=denylist),
        api_keys=ApiKeyService(db, keys=ApiKeyRepository,
                               cache_ttl_seconds=settings.read_cache_ttl_seconds))


def _failures_log(settings: Settings) -> EventLog:
    """Failed sign-ins on Redis when the deployment has one (every process counts the same
    failures; nothing connects until the first sign-in), else in this process."""
    if settings.redis_url is None:
        return MemoryWindows()
    return RedisWindows(settings.redis_url, timeout_seconds=settings.redis_timeout_seconds,
                        pool_size=2, prefix="archway:sign-ins:")

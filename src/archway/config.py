"""Settings: one typed class, read from ``ARCHWAY_*`` environment variables.

Every composition root takes a :class:`Settings` instance; nothing reads the environment
elsewhere. :func:`load_settings` turns validation failures into one readable message per
bad value, so a misconfigured process stops at start-up with a clear reason.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_ORIGIN = re.compile(r"https?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")
"""A browser's Origin (RFC 6454): scheme, host (a name or a bracketed IPv6) and port only."""


class ConfigurationError(Exception):
    """Raised when the environment holds an invalid ``ARCHWAY_*`` value."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARCHWAY_", extra="ignore", frozen=True)

    environment: Literal["dev", "test", "production"] = "dev"
    database_url: str = "sqlite+aiosqlite:///archway.db"
    # Overflow connections are closed on return, so under load they are reopened per request:
    # the pool keeps all its connections instead (see archway.kernel.db).
    db_pool_size: int = Field(default=30, ge=1, le=200)
    db_max_overflow: int = Field(default=0, ge=0, le=500)
    db_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    db_echo: bool = False

    http_server: Literal["granian", "uvicorn"] = "granian"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    grpc_host: str | None = Field(
        default=None, description="Interface of the monolith's gRPC server (default: the HTTP "
        "host).")
    grpc_port: int = Field(default=50051, ge=0, le=65535)

    issuer: str = "http://127.0.0.1:8000"
    audience: str = "archway"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    key_refresh_seconds: float = Field(default=5.0, gt=0, le=3600)
    refresh_token_ttl_seconds: int = Field(
        default=2_592_000, ge=300, le=31_536_000,
        description="How long an OAuth refresh token may be used (30 days). Every use rotates "
        "it, and the new one has this lifetime again.")

    argon2_time_cost: int = Field(default=2, ge=1, le=20)
    argon2_memory_kib: int = Field(default=19_456, ge=8, le=1_048_576)
    password_hash_workers: int = Field(default=2, ge=1, le=64)
    password_hash_queue_timeout_seconds: float = Field(default=5.0, gt=0)

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    idempotency_ttl_seconds: int = Field(default=86_400, ge=60)
    idempotency_max_queued_answers: int = Field(
        default=10_000, ge=1, le=1_000_000,
        description="Most Idempotency-Key answers a process holds in memory while they wait to "
        "be stored (a few milliseconds each, normally); while that many wait, or the database "
        "refuses them, new keyed requests are answered 503 with Retry-After before they run.")
    product_cache_max_age_seconds: int = Field(default=60, ge=0)
    fast_lane: bool = Field(
        default=True,
        description="Serve the plain case of the hottest GET routes without FastAPI's "
        "per-request machinery (same answers; see kernel/http/fast_lane.py).")
    read_cache_ttl_seconds: float = Field(
        default=1.0, ge=0, le=60,
        description="How long a process may answer a hot read (a product, a page of products, "
        "a user) from memory; writes in the same process drop what they touch at once.")

    outbox_poll_seconds: float = Field(
        default=1.0, gt=0, le=60,
        description="How often each outbox relay looks for events nobody nudged it about "
        "(commits in this process nudge it at once).")
    outbox_lease_seconds: float = Field(
        default=15.0, ge=1, le=600,
        description="How long a process's hold on an outbox (the right to relay it) lasts "
        "without renewal: when a process that relays an outbox dies, another process serving "
        "the same database takes the outbox over within this time (renewed at half of it).")
    outbox_notify: bool = Field(
        default=True,
        description="PostgreSQL: a process whose commits another process relays tells it at "
        "once (LISTEN/NOTIFY on one connection of its own) instead of leaving the event for "
        "that process's next poll. Turn off where LISTEN is not available (PgBouncer in "
        "transaction mode); ignored on SQLite.")
    outbox_batch_size: int = Field(
        default=500, ge=1, le=10_000,
        description="Most events a relay publishes at once; each consumer applies them in one "
        "transaction. Larger batches let the saga catch up faster after a burst (measured in "
        "docs/cqrs.md).")

    event_max_attempts: int = Field(
        default=5, ge=1, le=100,
        description="How many times in a row a consumer may fail on one event (retried with "
        "the relay's backoff) before the event is parked for it as a dead letter and the later "
        "events go on. Failures of the database itself do not count.")

    command_backpressure_seconds: float = Field(
        default=2.0, ge=0, le=60,
        description="While the consumers of a relay of this process lag behind its outbox by "
        "more than ARCHWAY_COMMAND_BACKPRESSURE_LAG events, a command that appends events waits "
        "up to this long for them to catch up, so a load the consumers cannot follow slows the "
        "commands down instead of growing every read model's lag without bound. 0 turns it off.")
    command_backpressure_lag: int = Field(
        default=500, ge=1, le=1_000_000,
        description="How many events may be committed to an outbox and not yet handled by every "
        "consumer before commands wait (see ARCHWAY_COMMAND_BACKPRESSURE_SECONDS). The relay "
        "keeps the count in memory, so checking it costs a command nothing.")

    read_your_writes_timeout_seconds: float = Field(
        default=2.0, gt=0, le=30,
        description="How long a query that carries a command's Consistency-Token waits for the "
        "read models to apply it before answering with what they have (Consistency: stale).")

    redis_url: str | None = Field(
        default=None,
        description="Redis for what every process of a deployment shares (the rate limits, failed "
        "sign-ins), as redis://HOST:PORT/DB (or rediss://, unix://). Unset: each process keeps "
        "its own, in memory.")
    redis_timeout_seconds: float = Field(
        default=0.5, gt=0, le=10,
        description="How long a request waits for Redis (connecting, a free connection, an "
        "answer) before the rate limiter treats it as down (see ARCHWAY_RATE_LIMIT_FAIL_OPEN).")

    rate_limits: bool = Field(
        default=True,
        description="Limit every API request's rate by consumer and route class, with the "
        "RateLimit-Policy and RateLimit headers on every answer and 429 past the quota "
        "(docs/api.md#rate-limits). `off` turns it off entirely.")
    rate_limit_window_seconds: int = Field(
        default=60, ge=1, le=86_400,
        description="The moving window every quota counts over (the headers' w).")
    rate_limit_anonymous_reads: int = Field(
        default=300, ge=1, description="Requests per window for a caller without a valid token, "
        "keyed by its address: GET, HEAD, OPTIONS.")
    rate_limit_anonymous_writes: int = Field(
        default=60, ge=1, description="… anonymous: any other method.")
    rate_limit_anonymous_auth: int = Field(
        default=30, ge=1, description="… anonymous: registering (POST /api/v*/users), login and "
        "token requests.")
    rate_limit_default_reads: int = Field(
        default=600, ge=1, description="Requests per window for a valid token's subject (plan "
        "default): reads.")
    rate_limit_default_writes: int = Field(default=120, ge=1, description="… default: writes.")
    rate_limit_default_auth: int = Field(default=30, ge=1, description="… default: auth.")
    rate_limit_partner_reads: int = Field(
        default=6000, ge=1, description="Requests per window for a partner's token (plan "
        "partner, see ARCHWAY_RATE_LIMIT_PARTNERS): reads.")
    rate_limit_partner_writes: int = Field(default=1200, ge=1, description="… partner: writes.")
    rate_limit_partner_auth: int = Field(default=60, ge=1, description="… partner: auth.")
    rate_limit_partners: list[str] = Field(
        default_factory=list,
        description="Client ids or token subjects on the partner plan, as a JSON list "
        '(["acme-client"]); every other valid token is on the default plan.')
    rate_limit_fail_open: bool = Field(
        default=True,
        description="When Redis cannot be reached: true lets requests through unlimited (no "
        "rate-limit headers; /readyz says degraded), false answers them 503 with Retry-After "
        "(and /readyz is unavailable). Open by default: a shop that refuses every customer "
        "because its limiter's store is down has turned a partial failure into an outage.")

    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="The proxies in front of Archway whose X-Forwarded-For (or RFC 7239 "
        "Forwarded) is believed, as a comma list of IPs or CIDRs (10.0.0.0/8,::1). Empty (the "
        "default): none, and a call's address is always its peer's. Behind a trusted peer it is "
        "the right-most untrusted X-Forwarded-For entry (docs/security.md#client-addresses).")

    login_failures_before_delay: int = Field(
        default=5, ge=1, le=1000,
        description="Failed sign-ins at the login page (/oauth/authorize) an email, known or "
        "not, may have within ARCHWAY_LOGIN_FAILURE_WINDOW_SECONDS before each further attempt "
        "waits: 1 s after the newest failure, doubling up to ARCHWAY_LOGIN_MAX_DELAY_SECONDS. "
        "Never a lockout (docs/security.md, API2). Counted on Redis when ARCHWAY_REDIS_URL is "
        "set (every process shares them; Redis down lets sign-ins through, logged).")
    login_failure_window_seconds: int = Field(
        default=900, ge=1, le=86_400,
        description="The moving window failed sign-ins are counted over, per email and per "
        "address.")
    login_max_delay_seconds: int = Field(
        default=60, ge=1, le=3600,
        description="The longest an email's next sign-in waits after its newest failure.")
    login_failures_per_address: int = Field(
        default=100, ge=1, le=1_000_000,
        description="Failed sign-ins one client address may have within the window, over "
        "every email, before its attempts are refused until the oldest leaves the window.")

    api_v1_sunset: str = "Wed, 31 Dec 2027 23:59:59 GMT"
    api_v1_deprecated_at: int = Field(default=1_767_225_600, description="Unix time, RFC 9745")
    cors_allow_origins: list[str] = Field(
        default_factory=list,
        description='The exact origins browsers may call the API from, as JSON '
        '(["https://shop.example"]); empty: no CORS. No "*": see docs/security.md.')
    hsts: bool = Field(
        default=False,
        description="Send Strict-Transport-Security on every answer: for a deployment served "
        "over HTTPS by a proxy that terminates TLS (answers to https requests always carry it).")

    show_demo_accounts: bool = Field(
        default=False,
        description="List the seeded demo accounts and their passwords on the landing page "
        "(GET /). `archway dev` turns it on; refused with ARCHWAY_ENVIRONMENT=production.")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool = True

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must be an SQLAlchemy async URL: sqlite+aiosqlite:///FILE or "
                "postgresql+asyncpg://USER@HOST/DB"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if not value:  # ARCHWAY_REDIS_URL= (set, but empty) means none
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a Redis URL: redis://HOST:PORT/DB, rediss://… or unix://…")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list):
            for network in value:
                try:
                    ipaddress.ip_network(str(network).strip(), strict=False)
                except ValueError:
                    raise ValueError(f"{network!r} is not an IP address or CIDR") from None
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _exact_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: scheme://host[:port], no path, no '*'")
        return origins

    @model_validator(mode="after")
    def _no_demo_accounts_in_production(self) -> Settings:
        if self.show_demo_accounts and self.environment == "production":
            raise ValueError("ARCHWAY_SHOW_DEMO_ACCOUNTS cannot be on in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus ``overrides``) or raise one clear :class:`ConfigurationError`."""
    try:
        # pydantic validates each override's type at run time:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []  # one line per bad value, each readable alone
        for error in exc.errors():
            name = "ARCHWAY_" + "_".join(str(part) for part in error["loc"]).upper()
            where = f"{name}: " if error["loc"] else ""
            lines.append(f"invalid configuration: {where}{error['msg']}")
        raise ConfigurationError("\n".join(lines)) from None

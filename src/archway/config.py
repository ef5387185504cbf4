"""Settings: one typed class, read from ``ARCHWAY_*`` environment variables.

Every composition root takes a :class:`Settings` instance; nothing reads the environment
elsewhere. :func:`load_settings` turns validation failures into one readable message per
bad value, so a misconfigured process stops at start-up with a clear reason.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    api_v1_sunset: str = "Wed, 31 Dec 2027 23:59:59 GMT"
    api_v1_deprecated_at: int = Field(default=1_767_225_600, description="Unix time, RFC 9745")
    cors_allow_origins: list[str] = Field(default_factory=list)

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

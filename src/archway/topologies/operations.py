"""The CLI's operations on a deployment's database. Each builds only the contexts' parts it
needs (from their wiring), never a whole topology: no HTTP app, no relay, no bus is started."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from prometheus_client import CollectorRegistry

from archway.catalog import wiring as catalog_wiring
from archway.config import Settings
from archway.identity import wiring as identity_wiring
from archway.identity.domain import ApiKey, OAuthClient
from archway.identity.keys import KeyRing
from archway.identity.ports import ClientChanges
from archway.identity.service import ClientSpec
from archway.kernel.db import Database
from archway.kernel.events.dead_letters import DeadLetter, DeadLetterOffice, RetryOutcome
from archway.kernel.events.metrics import EventMetrics
from archway.kernel.pagination import PageRequest
from archway.orders import wiring as orders_wiring
from archway.topologies.shared import database, event_plumbing


async def migrate_database(settings: Settings, contexts: tuple[str, ...]) -> None:
    from archway.kernel.migrate import migrate

    db = Database(settings.database_url)
    try:
        await migrate(db, contexts)
        await KeyRing(db).ensure_key()
    finally:
        await db.dispose()


@asynccontextmanager
async def _identity(
    settings: Settings, db: Database | None = None
) -> AsyncIterator[identity_wiring.IdentityModule]:
    """Identity over ``db`` (or a database of its own), closed with it."""
    own = db or database(settings)
    identity = identity_wiring.wire(settings, own)
    try:
        yield identity
    finally:
        identity.close()
        await own.dispose()


async def seed_demo(
    settings: Settings, accounts: tuple[tuple[str, str, str, str], ...]
) -> list[str]:
    """The demo accounts and products; existing ones are left as they are."""
    from archway.catalog.seed import seed_catalog
    from archway.kernel.errors import Conflict

    lines = []
    db = database(settings)
    async with _identity(settings, db) as identity:
        for role, email, password, name in accounts:
            with suppress(Conflict):  # already there: seeding twice changes nothing
                await identity.service.register(email, password, name, frozenset({role}))
            lines.append(f"{role:<8} {email} / {password}")
        await seed_catalog(catalog_wiring.service(settings, db))
    return lines


async def seed_demo_clients(settings: Settings) -> list[str]:
    """The public docs client (Swagger UI's Authorize: authorization code + PKCE) and the
    confidential demo client (client credentials); existing ones are left as they are. One
    line each: ``client``, then its id (and the demo client's secret)."""
    from archway.kernel.auth.principal import SCOPES
    from archway.kernel.errors import Conflict
    from archway.topologies.demo import (
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SCOPES,
        DEMO_CLIENT_SECRET,
        DOCS_CLIENT_ID,
        DOCS_REDIRECT_PATH,
    )

    docs = ClientSpec(
        DOCS_CLIENT_ID, "Archway API docs (Swagger UI)", public=True,
        grant_types=frozenset({"authorization_code", "refresh_token"}),
        scopes=frozenset(SCOPES), redirect_uris=(settings.issuer + DOCS_REDIRECT_PATH,))
    demo = ClientSpec(
        DEMO_CLIENT_ID, "Archway demo service", public=False,
        grant_types=frozenset({"client_credentials"}),
        scopes=frozenset(DEMO_CLIENT_SCOPES.split()), secret=DEMO_CLIENT_SECRET)
    async with _identity(settings) as identity:
        for spec in (docs, demo):
            with suppress(Conflict):  # already there: seeding twice changes nothing
                await identity.service.register_client(spec)
    return [
        f"{'client':<8} {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET}"
        f"  (confidential: client_credentials, {DEMO_CLIENT_SCOPES})",
        f"{'client':<8} {DOCS_CLIENT_ID}  (public, PKCE: Swagger UI's Authorize)",
    ]


async def create_client(
    settings: Settings, spec: ClientSpec
) -> tuple[OAuthClient, str | None]:
    async with _identity(settings) as identity:
        return await identity.service.register_client(spec)


async def list_clients(settings: Settings) -> list[OAuthClient]:
    async with _identity(settings) as identity:
        return await identity.service.list_clients()


async def revoke_client(settings: Settings, client_id: str) -> OAuthClient:
    async with _identity(settings) as identity:
        return await identity.service.revoke_client(client_id)


async def update_client(
    settings: Settings, client_id: str, changes: ClientChanges
) -> OAuthClient:
    async with _identity(settings) as identity:
        return await identity.service.update_client(client_id, changes)


async def rotate_client_secret(settings: Settings, client_id: str) -> tuple[OAuthClient, str]:
    async with _identity(settings) as identity:
        return await identity.service.rotate_client_secret(client_id)


async def create_api_key(
    settings: Settings, consumer: str, plan: str, scopes: frozenset[str]
) -> tuple[ApiKey, str]:
    async with _identity(settings) as identity:
        return await identity.api_keys.create(consumer, plan, scopes)


async def list_api_keys(settings: Settings) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first (read a page at a time)."""
    keys: list[ApiKey] = []
    async with _identity(settings) as identity:
        page = PageRequest(limit=100)
        while True:
            result = await identity.api_keys.page(page)
            keys += result.items
            if result.next_after is None:
                return keys
            page = PageRequest(limit=100, after=result.next_after)


async def revoke_api_key(settings: Settings, key_id: str) -> ApiKey:
    async with _identity(settings) as identity:
        return await identity.api_keys.revoke(key_id)


async def dev_token(settings: Settings, email: str, scopes: list[str], ttl: int | None) -> str:
    async with _identity(settings) as identity:
        return await identity.service.issue_dev_token(email, scopes, ttl)


async def rotate_keys(settings: Settings) -> str:
    async with _identity(settings) as identity:
        return await identity.keys.rotate()


async def rebuild_projections(settings: Settings) -> list[tuple[str, int]]:
    """Rebuild every read model from the orders' event log, one transaction each; safe while
    the deployment runs (see :func:`archway.orders.projections.replay`)."""
    db = database(settings)
    try:
        reads = orders_wiring.read_side(settings, db)
        return [(p.consumer, await p.rebuild()) for p in reads.projections]
    finally:
        await db.dispose()


@asynccontextmanager
async def _dead_letters(settings: Settings) -> AsyncIterator[DeadLetterOffice]:
    """The office with every consumer guarded (so that a retry reaches its consumer), over
    a bus that is never started."""
    db = database(settings)
    events = event_plumbing(settings, db, EventMetrics(CollectorRegistry()))
    catalog = catalog_wiring.wire(settings, db, events)
    orders_wiring.wire(settings, db, events, catalog=catalog.client)
    try:
        yield events.dead_letters
    finally:
        await db.dispose()


async def list_dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every event a consumer parked, oldest first."""
    async with _dead_letters(settings) as office:
        return await office.parked()


async def retry_dead_letter(
    settings: Settings, letter_id: str
) -> tuple[RetryOutcome, DeadLetter | None]:
    """Deliver one parked event to its consumer again (see ``DeadLetterOffice.retry``)."""
    async with _dead_letters(settings) as office:
        return await office.retry(letter_id)

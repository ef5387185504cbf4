"""Shared fixtures: one migrated database and one app per test session, emptied between tests.

The database is SQLite in a temporary file unless ``ARCHWAY_TEST_DATABASE_URL`` names another
(CI runs the suite once on each). Tables are emptied after every test, so tests never see each
other's rows, while the costly parts (migrations, app, pool) are built once.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete
from sqlalchemy.engine import Connection, make_url

from archway.catalog.store import catalog_metadata
from archway.config import Settings, load_settings
from archway.identity.store import identity_metadata, signing_keys
from archway.kernel.db import Database
from archway.kernel.migrate import migrate
from archway.kernel.tables import kernel_metadata
from archway.orders.store import orders_metadata
from archway.topologies.monolith import CONTEXTS, Monolith, build, create_app
from tests.rate_limiting import Limited

ALL_METADATA = (kernel_metadata, identity_metadata, catalog_metadata, orders_metadata)
ADMIN = ("admin@archway.test", "archway-admin", "Ada Admin", "admin")
ALICE = ("alice@archway.test", "archway-alice", "Alice Customer", "customer")
BOB = ("bob@archway.test", "archway-bob", "Bob Customer", "customer")


def _database_under_test() -> str:
    """What this run's tests use, for the run's header and closing lines (no password)."""
    url = os.environ.get("ARCHWAY_TEST_DATABASE_URL")
    if not url:
        return "SQLite (a temporary file; set ARCHWAY_TEST_DATABASE_URL for another)"
    return make_url(url).render_as_string(hide_password=True)


def pytest_report_header() -> str:
    return f"archway database: {_database_under_test()}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # The header is hidden under -q, as `make test` runs: say it again at the end.
    terminalreporter.write_line(f"archway database: {_database_under_test()}")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("ARCHWAY_TEST_DATABASE_URL")
    if url:
        return url
    path: Path = tmp_path_factory.mktemp("db") / "archway-test.db"
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url, environment="test", access_log=False,
        argon2_time_cost=1, argon2_memory_kib=64, issuer="http://testserver",
        read_cache_ttl_seconds=0,  # one app serves every test: no reads cached across them
        # One app serves every test from one address: their calls add up past any quota. The
        # rate limit tests (tests/http/test_rate_limits.py) build apps of their own with it on.
        rate_limits=False,
        # … and wrong passwords add up the same way: the sign-in throttle's tests
        # (tests/http/test_oauth_sign_in_throttle.py) build graphs of their own with it tight.
        login_failures_before_delay=1000, login_failures_per_address=1_000_000,
    )


@pytest.fixture(scope="session")
async def graph(settings: Settings) -> AsyncIterator[Monolith]:
    graph = build(settings)
    await migrate(graph.db, CONTEXTS)
    yield graph


@pytest.fixture
async def database(graph: Monolith) -> AsyncIterator[Database]:
    yield graph.db
    # A saga a test started may still be running: let it finish before the rows go.
    await graph.relays.settle()
    await graph.idempotency.answers.flush()  # no answer of this test is replayed in the next
    await empty_tables(graph.db)


async def empty_tables(db: Database) -> None:
    def empty(conn: Connection) -> None:
        for metadata in ALL_METADATA:
            for table in reversed(metadata.sorted_tables):
                if table is not signing_keys:
                    conn.execute(delete(table))

    await db.write(empty)


@pytest.fixture(scope="session")
async def app(settings: Settings, graph: Monolith) -> AsyncIterator[object]:
    application = create_app(settings, graph=graph)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object, database: Database) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def accounts(graph: Monolith, database: Database) -> dict[str, str]:
    """The admin, Alice and Bob; maps each email to the user's id."""
    ids = {}
    for email, password, name, role in (ADMIN, ALICE, BOB):
        user = await graph.identity.register(email, password, name, frozenset({role}))
        ids[email] = user.id
    return ids


AuthHeaders = Callable[[str, str], Awaitable[dict[str, str]]]


@pytest.fixture
def auth_headers(graph: Monolith, accounts: dict[str, str]) -> AuthHeaders:
    """``await auth_headers(email, "scope other:scope")`` → an Authorization header."""

    async def make(email: str, scopes: str) -> dict[str, str]:
        token = await graph.identity.issue_dev_token(email, scopes.split())
        return {"Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def limited(settings: Settings, graph: Monolith, app: object, database: Database) -> Limited:
    """``limited(rate_limit_anonymous_reads=3, …)``: an app on the session's graph with rate
    limits on and these settings (the session app runs the graph's lifespan; these only
    route)."""

    def make(**overrides: Any) -> FastAPI:
        return create_app(
            settings.model_copy(update={"rate_limits": True, **overrides}), graph=graph)

    return make

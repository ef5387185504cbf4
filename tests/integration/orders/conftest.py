"""Fixtures of the crash-recovery tests: their database and the process that dies."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from archway.kernel.db import Database
from archway.kernel.migrate import migrate
from archway.topologies.monolith import CONTEXTS, Monolith
from tests.conftest import empty_tables
from tests.integration.orders.crash_harness import CRASHING_PROCESS, FORKING_PARENT, Crasher, _psql


@pytest.fixture(scope="module")
def crash_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if database_url.startswith("sqlite"):
        path: Path = tmp_path_factory.mktemp("crash") / "crash.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    parsed = make_url(database_url)
    name = f"{parsed.database}_crash"
    _psql(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _psql(database_url, f'CREATE DATABASE "{name}"')
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        _psql(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
async def crash_db(crash_url: str) -> AsyncIterator[str]:
    db = Database(crash_url)
    try:
        await migrate(db, CONTEXTS)
    finally:
        await db.dispose()
    yield crash_url


@pytest.fixture
async def fresh(crash_db: str) -> AsyncIterator[list[Monolith]]:
    """Graphs the test builds over the crash database (each one a "process"); all are closed
    and the tables emptied afterwards."""
    graphs: list[Monolith] = []
    yield graphs
    for graph in graphs:
        await graph.close()
    db = Database(crash_db)
    try:
        await empty_tables(db)
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
async def crasher(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Crasher]:
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", FORKING_PARENT, CRASHING_PROCESS, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        yield Crasher(parent, tmp_path_factory.mktemp("crashing"))
    finally:
        assert parent.stdin is not None
        parent.stdin.close()
        try:
            await asyncio.wait_for(parent.wait(), 10)
        except TimeoutError:
            parent.kill()
            await parent.wait()

"""A real monolith on 127.0.0.1 with a database of its own, and the schemathesis setup that
fuzzes it through ``/openapi/v1.json`` and ``/openapi/v2.json``.

Every fuzz run gets fresh accounts (one customer, one admin) so that what one run deletes
(a fuzzer may well delete its own user) cannot hollow out the next one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.schemas import OpenApiSchema
from sqlalchemy.engine import make_url

from archway.config import Settings, load_settings
from archway.kernel.auth.principal import SCOPES
from archway.kernel.http.versioning import ApiVersion
from archway.tools.openapi_snapshot import current_documents
from archway.topologies.monolith import build
from tests.e2e.conftest import (
    ARCHWAY,
    UNREACHED_RATE_LIMITS,
    _create_postgres_database,
    _psql,
    free_port,
    serving_monolith,
)

# Bounded and reproducible: a fixed seed, derandomized generation, no example database, no
# per-example deadline and no timing health check (a loaded 2-core CI machine must not make it
# flaky).
MAX_EXAMPLES = 25
STATEFUL_STEPS = 12
REQUEST_TIMEOUT = 30  # seconds; a hung request fails the run instead of stalling it
SEED = 20260905
# The checks are tests/fuzz/contract.py's CHECKS. What a schema-valid request may still get: the
# defaults of `positive_data_acceptance` less 5xx (never acceptable here) plus 412, the answer to
# a stale or unknown `If-Match` (RFC 9110: a refusal for the resource's state, as 409 is, not for
# the request's form).
ACCEPTED_STATUSES = ("2xx", "3xx", "401", "403", "404", "409", "412", "429")
ROLE_SCOPES = {
    "customer": "profile orders:read orders:write",
    "admin": " ".join(SCOPES),
}
_accounts = itertools.count()


@dataclass(frozen=True)
class FuzzedServer:
    base_url: str
    settings: Settings  # for seeding accounts and minting tokens in this process


@pytest.fixture(scope="session")
def fuzz_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzedServer]:
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    else:  # a database of its own beside the suite's, dropped afterwards
        url = _create_postgres_database(database_url, "_fuzz")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ, "ARCHWAY_DATABASE_URL": url, "ARCHWAY_ISSUER": base_url,
        "ARCHWAY_ACCESS_LOG": "false", "ARCHWAY_ARGON2_MEMORY_KIB": "1024",
        "ARCHWAY_ARGON2_TIME_COST": "1",
        **UNREACHED_RATE_LIMITS,  # the fuzz judges the contract, not the limits
    }
    for command in (["db", "migrate"], ["seed"]):
        subprocess.run([ARCHWAY, *command], env=env, check=True, capture_output=True, timeout=120)
    try:
        with serving_monolith(env, port, tmp_path_factory.mktemp("fuzz-log") / "server.log"):
            settings = load_settings(
                database_url=url, issuer=base_url, argon2_time_cost=1, argon2_memory_kib=1024)
            yield FuzzedServer(base_url, settings)
    finally:
        if not database_url.startswith("sqlite"):
            _psql(url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')




def fresh_token(server: FuzzedServer, role: str) -> str:
    """A new user of ``role`` and a token carrying every scope that role's journeys need."""

    async def register_and_sign() -> str:
        graph = build(server.settings)
        try:
            email = f"fuzz-{role}-{next(_accounts)}-{time.time_ns()}@archway.test"
            await graph.identity.register(
                email, "fuzz-password", f"Fuzz {role}", frozenset({role}))
            return await graph.identity.issue_dev_token(email, ROLE_SCOPES[role].split(), 3600)
        finally:
            await graph.close()

    return asyncio.run(register_and_sign())


def fuzz_config(*, base_url: str | None = None) -> SchemathesisConfig:
    statuses = ", ".join(f'"{status}"' for status in ACCEPTED_STATUSES)
    connection = f'base-url = "{base_url}"' if base_url else ""
    return SchemathesisConfig.from_str(f"""
seed = {SEED}
request-timeout = {REQUEST_TIMEOUT}
# Hypothesis's health checks judge the generator (and `too_slow` the machine's load), not the API.
suppress-health-check = ["all"]
{connection}
[generation]
max-examples = {MAX_EXAMPLES}
deterministic = true
database = "none"

[checks.positive_data_acceptance]
enabled = true
expected-statuses = [{statuses}]
""")


def documented_schema(version: int) -> OpenApiSchema:
    """The version's document as the server builds it, loaded without a running server (so the
    operations are known when pytest collects the tests)."""
    document = current_documents()[ApiVersion(version)]
    return schemathesis.openapi.from_dict(document, config=fuzz_config())


def served_schema(server: FuzzedServer, version: int) -> OpenApiSchema:
    """The version's document as the running server serves it."""
    return schemathesis.openapi.from_url(
        f"{server.base_url}/openapi/v{version}.json", config=fuzz_config(base_url=server.base_url))

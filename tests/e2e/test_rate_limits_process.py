"""End to end: two real ``archway serve monolith`` processes on one database and one Redis
share one rate-limit budget exactly, whichever process each request reaches."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections import Counter
from contextlib import ExitStack

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.conftest import (
    ARCHWAY,
    _create_postgres_database,
    _psql,
    free_port,
    serving_monolith,
)
from tests.redis_server import require_redis

pytestmark = pytest.mark.e2e

QUOTA = 25
REQUESTS = 70


async def fire(base_urls: list[str], token: str) -> list[httpx.Response]:
    """``REQUESTS`` concurrent reads of one consumer, split evenly across ``base_urls``."""
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        return await asyncio.gather(*(
            http.get(f"{base_urls[n % len(base_urls)]}/api/v2/users/me",
                     headers={"Authorization": f"Bearer {token}"})
            for n in range(REQUESTS)))


def test_two_processes_on_one_redis_let_exactly_the_quota_through(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    redis_url = require_redis()
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('rl') / 'rl.db'}"
    else:
        url = _create_postgres_database(database_url, "_rl")
    ports = [free_port(), free_port()]
    env = {
        **os.environ, "ARCHWAY_DATABASE_URL": url, "ARCHWAY_ISSUER": f"http://127.0.0.1:{ports[0]}",
        "ARCHWAY_ACCESS_LOG": "false", "ARCHWAY_ARGON2_MEMORY_KIB": "1024",
        "ARCHWAY_REDIS_URL": redis_url, "ARCHWAY_RATE_LIMIT_DEFAULT_READS": str(QUOTA),
        # Two servers beside the suite's own on one PostgreSQL: a few connections each, so
        # together they stay well within its max_connections (100 here, shared).
        "ARCHWAY_DB_POOL_SIZE": "4",
    }
    try:
        for command in (["db", "migrate"], ["seed"]):
            subprocess.run([ARCHWAY, *command], env=env, check=True, capture_output=True,
                           timeout=120)
        # A fresh database seeds Alice with a new id: a consumer Redis has never counted.
        token = subprocess.run(
            [ARCHWAY, "token", "--user", "alice@archway.test", "--scope", "profile"], env=env,
            check=True, capture_output=True, text=True, timeout=120).stdout.strip()
        logs = tmp_path_factory.mktemp("rl-logs")
        with ExitStack() as stack:
            for n, port in enumerate(ports):
                stack.enter_context(serving_monolith(env, port, logs / f"server-{n}.log"))
            answers = asyncio.run(fire([f"http://127.0.0.1:{port}" for port in ports], token))
        statuses = Counter(answer.status_code for answer in answers)
        assert statuses == {200: QUOTA, 429: REQUESTS - QUOTA}
        # Counted apart, the two processes would have let twice the quota through.
        for answer in answers:
            assert answer.headers["ratelimit-policy"] == f'"default";q={QUOTA};w=60'
            if answer.status_code == 429:
                assert 1 <= int(answer.headers["retry-after"]) <= 60
                assert answer.headers["ratelimit"].startswith('"default";r=0;t=')
                assert answer.headers["content-type"] == "application/problem+json"
    finally:
        if not database_url.startswith("sqlite"):
            _psql(url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

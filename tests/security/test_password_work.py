"""argon2id runs off the event loop on a bounded pool: a burst of registrations beyond what it
holds waits a bounded time, then is a 503 with ``Retry-After``; it never piles up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from archway.config import Settings
from archway.identity.passwords import PasswordHasher
from archway.kernel.db import Database
from archway.kernel.errors import ServiceBusy
from archway.topologies.monolith import build, create_app

SLOW = {"time_cost": 3, "memory_kib": 32_768}  # tens of milliseconds a hash, like production
QUEUE_TIMEOUT = 0.005  # far shorter than one hash: who waits is refused, whatever the load


async def test_hashes_are_argon2id_and_verify() -> None:
    hasher = PasswordHasher(time_cost=1, memory_kib=64, workers=1, queue_timeout=1)
    try:
        digest = await hasher.hash("correct horse")
        assert digest.startswith("$argon2id$")
        assert await hasher.verify(digest, "correct horse")
        assert not await hasher.verify(digest, "wrong horse")
        assert not await hasher.verify("not a hash", "correct horse")
    finally:
        hasher.close()


async def test_the_loop_keeps_running_while_passwords_hash() -> None:
    hasher = PasswordHasher(**SLOW, workers=1, queue_timeout=5)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        started = time.perf_counter()
        await asyncio.gather(*(hasher.hash(f"password {n}") for n in range(3)))
        elapsed = time.perf_counter() - started
    finally:
        ticker.cancel()
        hasher.close()
    assert ticks >= elapsed / 0.005 / 4  # the loop was free most of the time


async def test_a_burst_beyond_the_pool_is_refused_after_the_queue_timeout() -> None:
    hasher = PasswordHasher(**SLOW, workers=1, queue_timeout=QUEUE_TIMEOUT)  # 4 permits
    try:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(hasher.hash(f"password {n}") for n in range(8)), return_exceptions=True)
        refused = [r for r in results if isinstance(r, ServiceBusy)]
        assert len(refused) == 4, results
        assert all(isinstance(r, str) for r in results if r not in refused)
        assert time.perf_counter() - started < 30
    finally:
        hasher.close()


@pytest.fixture
async def busy_client(
    settings: Settings, database: Database
) -> AsyncIterator[httpx.AsyncClient]:
    tight = settings.model_copy(update={
        "argon2_time_cost": SLOW["time_cost"], "argon2_memory_kib": SLOW["memory_kib"],
        "password_hash_workers": 1, "password_hash_queue_timeout_seconds": QUEUE_TIMEOUT})
    graph = build(tight)
    transport = httpx.ASGITransport(app=create_app(tight, graph=graph))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c
    finally:
        await graph.close()


async def test_registrations_beyond_the_pool_are_503_with_retry_after(
    busy_client: httpx.AsyncClient,
) -> None:
    answers = await asyncio.gather(*(busy_client.post("/api/v1/users", json={
        "email": f"burst{n}@example.com", "password": "long enough", "name": "Burst"})
        for n in range(8)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * 4 + [503] * 4, statuses
    for busy in (a for a in answers if a.status_code == 503):
        assert busy.headers["retry-after"] == "1"
        assert busy.headers["content-type"] == "application/problem+json"
        assert busy.json()["type"] == "/problems/service-busy"

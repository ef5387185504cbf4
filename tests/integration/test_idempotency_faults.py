"""An ``Idempotency-Key`` whose effect committed is never applied twice: the probe route
(:mod:`tests.integration.idempotency_probe`) commits its counted row, then fails in each way
(a 5xx, an exception, a cancellation, SIGKILL of its process), and every retry afterwards, in
this process or another one, before or after the first attempt's lock lapses, finds exactly
one effect."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import update

from archway.kernel.db import Database
from archway.kernel.http.idempotency_store import IdempotencyStore
from archway.kernel.tables import idempotency_keys
from tests.integration.idempotency_probe import Probe, effects, keyed_client, post

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def store(database: Database) -> AsyncIterator[IdempotencyStore]:
    idempotency = IdempotencyStore(database, 3600)
    yield idempotency
    await idempotency.answers.stop()


async def fail_after_commit(database: Database, store: IdempotencyStore, database_url: str,
                            failure: str, key: str) -> None:
    """The first attempt: its effect commits, then it fails as ``failure`` says."""
    if failure == "sigkill":
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c",
            "from tests.integration.idempotency_probe import main; main()", database_url, key,
            cwd=ROOT, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONWARNINGS": "ignore"})
        _, errors = await asyncio.wait_for(child.communicate(), 60)
        assert child.returncode == -signal.SIGKILL, errors.decode()[-2000:]
        return
    probe = Probe(database, failure)
    async with keyed_client(probe, store) as http:
        if failure == "cancelled":
            attempt = asyncio.create_task(post(http, key))
            await asyncio.wait_for(probe.committed.wait(), 10)
            attempt.cancel()
            await asyncio.gather(attempt, return_exceptions=True)
        else:
            assert (await post(http, key)).status_code == 500
    assert probe.calls == 1


async def locks_lapse(database: Database) -> None:
    """Time passes: every in-flight claim's lock lapses (as after IN_FLIGHT_LOCK_SECONDS)."""
    await database.write(lambda conn: conn.execute(
        update(idempotency_keys).values(locked_until=0)))


@pytest.mark.parametrize("failure", ["status", "exception", "cancelled", "sigkill"])
async def test_an_effect_that_committed_is_never_applied_again_whatever_failed_after_it(
    database: Database, store: IdempotencyStore, database_url: str, failure: str
) -> None:
    key = f"probe-{failure}"
    await fail_after_commit(database, store, database_url, failure, key)
    assert await effects(database) == 1

    here = Probe(database, None)
    another_process = Probe(database, None)
    async with keyed_client(here, store) as local, \
            keyed_client(another_process, IdempotencyStore(database, 3600)) as remote:
        for http in (local, remote):  # at once: the first attempt may still be running
            retry = await post(http, key)
            assert retry.status_code == 409, retry.text
            assert await effects(database) == 1
        await store.answers.flush()
        await locks_lapse(database)
        retries = await asyncio.gather(*(post(http, key) for http in (local, remote) * 3))
        await store.answers.flush()
        retries += [await post(http, key) for http in (local, remote)]
    for retry in retries:
        assert retry.status_code == 409, retry.text
        assert retry.headers["content-type"] == "application/problem+json"
        problem = retry.json()
        assert problem["type"] == "/problems/idempotent-request-applied", problem
        assert "took effect" in problem["detail"]
    assert await effects(database) == 1
    assert here.calls + another_process.calls <= len(retries) + 2  # ran, but wrote nothing


async def test_a_retry_replays_the_answer_of_an_effect_that_answered(
    database: Database, store: IdempotencyStore
) -> None:
    async with keyed_client(Probe(database, None), store) as http:
        first = await post(http, "probe-ok")
        await store.answers.flush()
        await locks_lapse(database)
        again = await post(http, "probe-ok")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert await effects(database) == 1


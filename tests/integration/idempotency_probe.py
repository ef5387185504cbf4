"""A probe for the ``Idempotency-Key`` fault tests: a tiny ASGI app over the real kernel store
whose effect is one counted row, and which fails after that row committed in a chosen way.

It runs in the test process, and (:func:`main`) in a child process that kills itself with
SIGKILL right after the commit, so that nothing of the request's own clean-up runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
from starlette.types import Receive, Scope, Send

from archway.kernel.db import Database
from archway.kernel.http.idempotency import Idempotency
from archway.kernel.http.idempotency_store import IdempotencyStore
from archway.kernel.tables import idempotency_keys

OWNER = "tester"
EFFECT_OWNER = "probe-effect"
FAILURES = ("status", "exception", "cancelled", "sigkill")


async def effects(db: Database) -> int:
    """The probe's effects so far: rows of their own in the kernel's table."""
    return int(await db.read(lambda conn: conn.execute(
        select(func.count()).select_from(idempotency_keys)
        .where(idempotency_keys.c.owner == EFFECT_OWNER)).scalar_one()))


class Probe:
    """``POST /effects``: writes one effect row, then fails as ``failure`` says (``None``: it
    answers 201 with a ``Location``)."""

    def __init__(self, db: Database, failure: str | None) -> None:
        self.db, self.failure = db, failure
        self.calls = 0
        self.committed = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        self.calls += 1

        def write(conn: Connection) -> None:
            conn.execute(insert(idempotency_keys).values(
                owner=EFFECT_OWNER, key=str(uuid.uuid4()), request_hash="-", state="done",
                locked_until=0, expires_at=int(time.time()) + 3600))

        await self.db.write(write)
        self.committed.set()
        if self.failure == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.failure == "exception":
            raise RuntimeError("the probe failed after its commit")
        if self.failure == "cancelled":
            await asyncio.sleep(3600)  # the test cancels the request here
        status = 500 if self.failure == "status" else 201
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"location", b"/effects/1")]})
        await send({"type": "http.response.body", "body": b'{"done": true}'})


def keyed_client(app: Any, store: IdempotencyStore) -> httpx.AsyncClient:
    async def owner_of(_scope: Scope) -> str:
        return OWNER

    guarded = Idempotency(app, store=store, owner_of=owner_of, routes=())
    transport = httpx.ASGITransport(app=guarded, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://probe")


async def post(http: httpx.AsyncClient, key: str) -> httpx.Response:
    return await http.post("/effects", json={"n": 1}, headers={"Idempotency-Key": key})


async def _die_after_commit(url: str, key: str) -> None:
    db = Database(url)
    store = IdempotencyStore(db, 3600)
    async with keyed_client(Probe(db, "sigkill"), store) as http:
        await post(http, key)
    print("still alive: the probe never committed", file=sys.stderr, flush=True)
    sys.exit(3)


def main() -> None:
    """``python -c 'from tests.integration.idempotency_probe import main; main()' URL KEY``."""
    url, key = sys.argv[1:3]
    asyncio.run(_die_after_commit(url, key))

"""The ``Idempotency-Key`` store: claims, first answers and their expiry, in the kernel's
``idempotency_keys`` table (see :mod:`archway.kernel.http.idempotency` for how a request uses
them).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from archway.kernel.db import UnitsOfWork
from archway.kernel.statements import DriverWrite
from archway.kernel.tables import idempotency_keys

IN_FLIGHT_LOCK_SECONDS = 60
PURGE_INTERVAL_SECONDS = 300
ANSWER_LINGER_SECONDS = 0.002
"""How long the answer writer waits by default for more answers to join a batch."""

_log = logging.getLogger("archway.idempotency")

# Built once: every POST with a key runs several of these.
_WHERE = (idempotency_keys.c.owner == bindparam("b_owner"),
          idempotency_keys.c.key == bindparam("b_key"))
_ROW = select(idempotency_keys).where(*_WHERE)
_INSERT_IF_ABSENT = {
    "sqlite": DriverWrite(sqlite.insert(idempotency_keys).on_conflict_do_nothing()),
    "postgresql": DriverWrite(postgresql.insert(idempotency_keys).on_conflict_do_nothing()),
}
_RECLAIM = DriverWrite(update(idempotency_keys).where(*_WHERE).values(
    request_hash=bindparam("request_hash"), state=bindparam("state"),
    locked_until=bindparam("locked_until"), expires_at=bindparam("expires_at"),
    status_code=bindparam("status_code"), response_headers=bindparam("response_headers"),
    response_body=bindparam("response_body")))
_COMPLETE = DriverWrite(update(idempotency_keys).where(*_WHERE).values(
    state="done", status_code=bindparam("b_status"), response_headers=bindparam("b_headers"),
    response_body=bindparam("b_body")))
_RELEASE = DriverWrite(delete(idempotency_keys).where(*_WHERE))


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    REPLAY = "replay"
    IN_FLIGHT = "in_flight"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class KeyedRequest:
    """A POST under an ``Idempotency-Key``: whose key, and the hash of what was asked."""

    owner: str
    key: str
    request_hash: str

    @property
    def where(self) -> dict[str, str]:
        return {"b_owner": self.owner, "b_key": self.key}


class Answered(Exception):
    """Raised by a claim inside the request's first write when the key is already taken: the
    write is refused (rolled back) and the middleware answers with :attr:`outcome`."""

    def __init__(self, outcome: ClaimOutcome, stored: StoredResponse | None) -> None:
        super().__init__(outcome.value)
        self.outcome = outcome
        self.stored = stored


class IdempotencyStore:
    """Claims, answers and their expiry, in the kernel's ``idempotency_keys`` table."""

    def __init__(
        self, db: UnitsOfWork, ttl_seconds: int, *,
        answer_linger_seconds: float = ANSWER_LINGER_SECONDS,
    ) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self.answers = AnswerWriter(db, self._purge_expired, linger_seconds=answer_linger_seconds)

    def claim_within(self, conn: Connection, request: KeyedRequest) -> None:
        """Take the key for ``request`` in ``conn``'s transaction, or raise :class:`Answered`."""
        outcome, stored = self._claim(conn, request, None)
        if outcome is not ClaimOutcome.CLAIMED:
            raise Answered(outcome, stored)

    async def record_unclaimed(
        self, request: KeyedRequest, response: StoredResponse
    ) -> tuple[ClaimOutcome, StoredResponse | None]:
        """For a request that ran without writing: store its answer, unless the key has one
        (then the outcome says which). ``CLAIMED`` means ``response`` is now the answer."""
        return await self._db.write(lambda conn: self._claim(conn, request, response))

    async def release(self, request: KeyedRequest) -> None:
        """Give a claim up: the first attempt failed, so a retry should run again."""
        self.answers.forget(request)
        await self._db.write(lambda conn: _RELEASE.execute(conn, request.where))

    def _claim(
        self, conn: Connection, request: KeyedRequest, answer: StoredResponse | None
    ) -> tuple[ClaimOutcome, StoredResponse | None]:
        now = int(time.time())
        fresh = {
            "request_hash": request.request_hash, "state": "in_flight",
            "locked_until": now + IN_FLIGHT_LOCK_SECONDS, "expires_at": now + self._ttl,
            "status_code": None, "response_headers": None, "response_body": None,
        }
        if answer is not None:
            fresh.update(state="done", status_code=answer.status,
                         response_headers=_headers_json(answer), response_body=answer.body)
        insert = _INSERT_IF_ABSENT[conn.dialect.name]
        row = None
        for _attempt in range(2):  # the row may go (released, purged) between the two looks
            if insert.execute(conn, {"owner": request.owner, "key": request.key, **fresh}):
                return ClaimOutcome.CLAIMED, None
            row = conn.execute(_ROW, request.where).first()
            if row is not None:
                break
        if row is None:
            return ClaimOutcome.IN_FLIGHT, None
        abandoned = (row.state == "in_flight" and row.locked_until <= now
                     and row.request_hash == request.request_hash)
        if row.expires_at <= now or abandoned:
            _RECLAIM.execute(conn, {**request.where, **fresh})
            return ClaimOutcome.CLAIMED, None
        if row.request_hash != request.request_hash:
            return ClaimOutcome.MISMATCH, None
        if row.state == "in_flight":  # its answer may still be queued in this process
            return self.answers.unwritten_outcome(request) or (ClaimOutcome.IN_FLIGHT, None)
        headers = [tuple(pair) for pair in orjson.loads(row.response_headers or "[]")]
        return ClaimOutcome.REPLAY, StoredResponse(
            row.status_code, headers, row.response_body or b"")  # type: ignore[arg-type]

    def _purge_expired(self, conn: Connection) -> None:
        conn.execute(delete(idempotency_keys).where(
            idempotency_keys.c.expires_at <= int(time.time())))


class AnswerWriter:
    """Stores first answers in batches, in the background (see the module).

    :meth:`start` and :meth:`stop` belong to the app's lifespan; :meth:`stop` writes what is
    left. Answers whose batch fails stay queued and are retried with a growing pause.
    """

    def __init__(
        self, db: UnitsOfWork, purge: Callable[[Connection], None], *, linger_seconds: float,
    ) -> None:
        self._db = db
        self._purge = purge
        self._linger = linger_seconds
        self._queued: dict[tuple[str, str], tuple[str, StoredResponse]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_purge = 0.0

    def add(self, request: KeyedRequest, response: StoredResponse) -> None:
        self._queued[(request.owner, request.key)] = (request.request_hash, response)
        self._wake.set()
        if self._task is None:
            self.start()

    def unwritten_outcome(
        self, request: KeyedRequest
    ) -> tuple[ClaimOutcome, StoredResponse | None] | None:
        """What a queued answer means for ``request``: a replay, or another body (mismatch)."""
        queued = self._queued.get((request.owner, request.key))
        if queued is None:
            return None
        request_hash, response = queued
        if request_hash != request.request_hash:
            return ClaimOutcome.MISMATCH, None
        return ClaimOutcome.REPLAY, response

    def forget(self, request: KeyedRequest) -> None:
        self._queued.pop((request.owner, request.key), None)

    def start(self) -> None:
        if self._task is None:
            # A context of its own: not the request's (trace ids, a pending first-write step).
            self._task = asyncio.create_task(
                self._run(), name="idempotency-answers", context=contextvars.Context())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._queued:
            await self.flush()

    async def flush(self) -> None:
        """Write every queued answer now, in one transaction."""
        batch = dict(self._queued)
        if not batch:
            return
        await self._db.write(lambda conn: self._write(conn, batch))
        for owner_key, queued in batch.items():
            if self._queued.get(owner_key) is queued:
                del self._queued[owner_key]

    def _write(self, conn: Connection, batch: dict[tuple[str, str], tuple[str, Any]]) -> None:
        _COMPLETE.execute(conn, [
            {"b_owner": owner, "b_key": key, "b_status": response.status,
             "b_headers": _headers_json(response), "b_body": response.body}
            for (owner, key), (_hash, response) in batch.items()])
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_INTERVAL_SECONDS
            self._purge(conn)

    async def _run(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self._linger)
            try:
                await self.flush()
                failures = 0
            except Exception:  # noqa: BLE001 - a failed batch stays queued; the writer lives on
                failures += 1
                _log.exception(
                    "storing %d idempotent answers failed; retrying", len(self._queued))
                await asyncio.sleep(min(0.1 * 2 ** failures, 5.0))
                self._wake.set()


def _headers_json(response: StoredResponse) -> str:
    return orjson.dumps(response.headers).decode()

"""The ``Idempotency-Key`` store: claims, first answers and their expiry, in the kernel's
``idempotency_keys`` table (see :mod:`archway.kernel.http.idempotency` for how a request uses
them).
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
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
"""How long a claim counts as still running; after that its answer is taken to be lost."""
PURGE_INTERVAL_SECONDS = 300
ANSWER_LINGER_SECONDS = 0.002
"""How long the answer writer waits by default for more answers to join a batch."""
MAX_QUEUED_ANSWERS = 10_000
"""How many answers the writer holds in memory by default (``idempotency_max_queued_answers``)."""
_MAX_RETRY_PAUSE_SECONDS = 2.0

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
    state=bindparam("b_state"), status_code=bindparam("b_status"),
    response_headers=bindparam("b_headers"), response_body=bindparam("b_body")))


def same_digest(stored: str, sent: str) -> bool:
    """Digests are compared in constant time (``hmac.compare_digest``), so how long a check
    takes says nothing about how much of a stored digest a guess matched."""
    return hmac.compare_digest(stored.encode(), sent.encode())


class ClaimOutcome(Enum):
    CLAIMED = "claimed"
    REPLAY = "replay"
    IN_FLIGHT = "in_flight"
    MISMATCH = "mismatch"
    APPLIED = "applied"
    """The key's effect committed, and no answer of it is kept: it must not run again."""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def location(self) -> str | None:
        return next((value for name, value in self.headers if name.lower() == "location"), None)


@dataclass(frozen=True, slots=True)
class TookEffect:
    """What is kept of a first attempt that took effect and then failed (a 5xx, an exception,
    a cancellation): no answer, only the resource it named, if any."""

    location: str | None


Kept = StoredResponse | TookEffect
Outcome = tuple[ClaimOutcome, Kept | None]


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

    def __init__(self, outcome: ClaimOutcome, kept: Kept | None) -> None:
        super().__init__(outcome.value)
        self.outcome = outcome
        self.kept = kept


class IdempotencyStore:
    """Claims, answers and their expiry, in the kernel's ``idempotency_keys`` table."""

    def __init__(
        self, db: UnitsOfWork, ttl_seconds: int, *,
        answer_linger_seconds: float = ANSWER_LINGER_SECONDS,
        max_queued_answers: int = MAX_QUEUED_ANSWERS,
    ) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self.answers = AnswerWriter(
            db, self._purge_expired, linger_seconds=answer_linger_seconds,
            max_queued=max_queued_answers)

    def claim_within(self, conn: Connection, request: KeyedRequest) -> None:
        """Take the key for ``request`` in ``conn``'s transaction, or raise :class:`Answered`."""
        outcome, kept = self._claim(conn, request, None)
        if outcome is not ClaimOutcome.CLAIMED:
            raise Answered(outcome, kept)

    async def record_unclaimed(self, request: KeyedRequest, response: StoredResponse) -> Outcome:
        """For a request that ran without writing: store its answer, unless the key has one
        (then the outcome says which). ``CLAIMED`` means ``response`` is now the answer."""
        return await self._db.write(lambda conn: self._claim(conn, request, response))

    def _claim(
        self, conn: Connection, request: KeyedRequest, answer: StoredResponse | None
    ) -> Outcome:
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
        if row.expires_at <= now:
            _RECLAIM.execute(conn, {**request.where, **fresh})
            return ClaimOutcome.CLAIMED, None
        if not same_digest(row.request_hash, request.request_hash):
            return ClaimOutcome.MISMATCH, None
        if row.state == "in_flight":
            # A claim is only ever stored with its request's first effect: whatever became of
            # that request, its effect is in. Its answer may still be queued in this process.
            return self.answers.unwritten_outcome(request) or (
                (ClaimOutcome.IN_FLIGHT, None) if row.locked_until > now
                else (ClaimOutcome.APPLIED, TookEffect(None)))
        headers: list[tuple[str, str]] = [
            (str(name), str(value)) for name, value in orjson.loads(row.response_headers or "[]")]
        if row.state == _APPLIED:
            return ClaimOutcome.APPLIED, TookEffect(StoredResponse(0, headers, b"").location)
        return ClaimOutcome.REPLAY, StoredResponse(
            row.status_code, headers, row.response_body or b"")

    def _purge_expired(self, conn: Connection) -> None:
        conn.execute(delete(idempotency_keys).where(
            idempotency_keys.c.expires_at <= int(time.time())))


class AnswerWriter:
    """Stores first answers in batches, in the background (see the module).

    :meth:`start` and :meth:`stop` belong to the app's lifespan; :meth:`stop` writes what is
    left. At most ``max_queued`` answers wait in memory: while that many do, or while the last
    batch failed (the database is down), :meth:`admits` is false and new keyed requests are
    refused (503) before they run. A failed batch stays queued and is retried, with a pause
    that grows to a bound.
    """

    def __init__(
        self, db: UnitsOfWork, purge: Callable[[Connection], None], *, linger_seconds: float,
        max_queued: int = MAX_QUEUED_ANSWERS,
    ) -> None:
        self._db = db
        self._purge = purge
        self._linger = linger_seconds
        self._max_queued = max_queued
        self._queued: dict[tuple[str, str], tuple[str, Kept]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_purge = 0.0
        self._failing = False

    def admits(self) -> bool:
        """Whether a new keyed request may run: its answer will have room, and a way out."""
        return len(self._queued) < self._max_queued and not self._failing

    def add(self, request: KeyedRequest, kept: Kept) -> None:
        """Queue the key's answer (or what is kept of an attempt that took effect and failed).

        With the queue full it is dropped (logged): the stored claim still says the effect is
        in, so a retry is never run again; it only cannot be replayed."""
        owner_key = (request.owner, request.key)
        if len(self._queued) >= self._max_queued and owner_key not in self._queued:
            _log.warning("idempotent answer dropped: %d answers already wait to be stored",
                         len(self._queued))
            return
        self._queued[owner_key] = (request.request_hash, kept)
        self._wake.set()
        if self._task is None:
            self.start()

    def unwritten_outcome(self, request: KeyedRequest) -> Outcome | None:
        """What a queued answer means for ``request``: a replay, a first attempt that took
        effect without an answer, or another body (mismatch)."""
        queued = self._queued.get((request.owner, request.key))
        if queued is None:
            return None
        request_hash, kept = queued
        if not same_digest(request_hash, request.request_hash):
            return ClaimOutcome.MISMATCH, None
        if isinstance(kept, TookEffect):
            return ClaimOutcome.APPLIED, kept
        return ClaimOutcome.REPLAY, kept

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
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - stopping goes on: the claims are stored
                # Each claim committed with its effect, so a retry of these keys is answered
                # 409 idempotent-request-applied (or rebuilt, for orders), never run again.
                _log.warning("%d idempotency answers could not be stored at shutdown; their "
                             "retries will be told the request took effect", len(self._queued),
                             exc_info=True)

    async def flush(self) -> None:
        """Write every queued answer now, in one transaction."""
        batch = dict(self._queued)
        if not batch:
            return
        await self._db.write(lambda conn: self._write(conn, batch))
        for owner_key, queued in batch.items():
            if self._queued.get(owner_key) is queued:
                del self._queued[owner_key]

    def _write(self, conn: Connection, batch: dict[tuple[str, str], tuple[str, Kept]]) -> None:
        _COMPLETE.execute(conn, [
            {"b_owner": owner, "b_key": key, **_row_of(kept)}
            for (owner, key), (_hash, kept) in batch.items()])
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
                failures, self._failing = 0, False
            except Exception:  # noqa: BLE001 - a failed batch stays queued; the writer lives on
                failures, self._failing = failures + 1, True
                if failures == 1 or failures % 100 == 0:  # not a line per retry while down
                    _log.exception("storing %d idempotent answers failed (%d times); retrying",
                                   len(self._queued), failures)
                await asyncio.sleep(min(0.05 * 2 ** min(failures, 10), _MAX_RETRY_PAUSE_SECONDS))
                self._wake.set()


_APPLIED = "applied"


def _row_of(kept: Kept) -> dict[str, Any]:
    if isinstance(kept, TookEffect):
        location = [("location", kept.location)] if kept.location else []
        return {"b_state": _APPLIED, "b_status": None,
                "b_headers": orjson.dumps(location).decode(), "b_body": None}
    return {"b_state": "done", "b_status": kept.status, "b_headers": _headers_json(kept),
            "b_body": kept.body}


def _headers_json(response: StoredResponse) -> str:
    return orjson.dumps(response.headers).decode()

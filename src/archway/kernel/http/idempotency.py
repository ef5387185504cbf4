"""``Idempotency-Key`` on POST: replay the first answer, refuse a changed body or a race.

The key is scoped to its owner (the token's subject, else the client address) and stored in the
database, so it survives restarts and is shared by every process.

* **The claim commits with the request's first write** (:func:`~archway.kernel.db.
  joining_first_write`): the key is taken in the same transaction as the request's first effect,
  so two attempts can never both apply one, and a claim costs no transaction of its own. If the
  key is already taken, that write is refused (:class:`Answered`) and the middleware replays the
  stored answer (same body), refuses another body (422), or answers 409 while the first attempt
  is still in flight.
* **The answer is written behind** (:class:`AnswerWriter`): the response goes out at once, and
  answers are stored in batches, a transaction per batch instead of one per request. Until its
  batch commits an answer is kept in memory, so this process replays it already; another process
  sees the first attempt in flight (409) for those few milliseconds.
* A request that never writes (a refusal, a read-only POST) claims its key and records its
  answer in one transaction after it ran, unless the key has an answer already.
* A first attempt that ends in a 5xx or an exception gives its claim up, so a retry runs again
  instead of replaying a failure. A claim whose process died is taken over once its lock lapses.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archway.kernel.db import UnitsOfWork, joining_first_write
from archway.kernel.errors import BadRequest, Conflict, InvalidInput
from archway.kernel.http.problems import error_response
from archway.kernel.statements import DriverWrite
from archway.kernel.tables import idempotency_keys

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_REPLAYED_HEADERS = {"content-type", "location", "etag", "consistency-token", "cache-control"}
IN_FLIGHT_LOCK_SECONDS = 60
PURGE_INTERVAL_SECONDS = 300
ANSWER_LINGER_SECONDS = 0.002
"""How long the answer writer waits by default for more answers to join a batch."""

OwnerOf = Callable[[Scope], Awaitable[str]]
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
        if row.state == "in_flight":
            unwritten = self.answers.unwritten(request)
            if unwritten is None:
                return ClaimOutcome.IN_FLIGHT, None
            return ClaimOutcome.REPLAY, unwritten
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

    def unwritten(self, request: KeyedRequest) -> StoredResponse | None:
        """The answer to ``request``'s key if it is still queued (any request hash)."""
        queued = self._queued.get((request.owner, request.key))
        return queued[1] if queued is not None else None

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


class Idempotency:
    def __init__(self, app: ASGIApp, *, store: IdempotencyStore, owner_of: OwnerOf) -> None:
        self.app = app
        self.store = store
        self.owner_of = owner_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if not _KEY.match(key):
            await error_response(scope, BadRequest(
                "Idempotency-Key must be 1 to 255 visible ASCII characters."))(scope, receive, send)
            return
        body = await _read_body(receive)
        digest = hashlib.sha256(
            scope["method"].encode() + b" " + scope["path"].encode() + b"\n" + body
        ).hexdigest()
        request = KeyedRequest(await self.owner_of(scope), key, digest)
        earlier = self.store.answers.unwritten_outcome(request)
        if earlier is not None:
            await _answer(scope, receive, send, *earlier)
            return
        await self._run_first(scope, body, send, request)

    async def _run_first(
        self, scope: Scope, body: bytes, send: Send, request: KeyedRequest
    ) -> None:
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        with joining_first_write(lambda conn: self.store.claim_within(conn, request)) as claim:
            # Once the claim has committed the answer streams out; before, it is held until
            # it is known to be the key's answer.
            response = _Captured(send, stream=lambda: claim.committed)
            try:
                await self.app(scope, replay_body, response.capture)
            except Answered as answered:
                await _answer(scope, replay_body, send, answered.outcome, answered.stored)
                return
            except BaseException:
                if claim.committed:
                    await self.store.release(request)
                raise
        if claim.committed:
            if response.status >= 500:
                await self.store.release(request)
            else:
                self.store.answers.add(request, response.stored())
            return
        if response.status < 500:
            outcome, stored = await self.store.record_unclaimed(request, response.stored())
            if outcome is not ClaimOutcome.CLAIMED:
                await _answer(scope, replay_body, send, outcome, stored)
                return
        await response.release_held()


class _Captured:
    """An ASGI ``send`` that keeps a copy of the answer, and holds it back unless ``stream``."""

    def __init__(self, send: Send, stream: Callable[[], bool]) -> None:
        self._send = send
        self._stream = stream
        self._streaming = False
        self._held: list[Message] = []
        self.status = 500
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []

    async def capture(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = [
                (k.decode("latin-1"), v.decode("latin-1"))
                for k, v in message.get("headers", [])
                if k.decode("latin-1").lower() in _REPLAYED_HEADERS
            ]
            self._streaming = self._stream()
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))
        if self._streaming:
            await self._send(message)
        else:
            self._held.append(message)

    async def release_held(self) -> None:
        for message in self._held:
            await self._send(message)
        self._held.clear()

    def stored(self) -> StoredResponse:
        return StoredResponse(self.status, self.headers, b"".join(self.chunks))


async def _answer(
    scope: Scope, receive: Receive, send: Send, outcome: ClaimOutcome,
    stored: StoredResponse | None,
) -> None:
    if outcome is ClaimOutcome.REPLAY and stored is not None:
        await _replay(stored, send)
        return
    refusal: Exception = (
        InvalidInput("This Idempotency-Key was used with a different request body.")
        if outcome is ClaimOutcome.MISMATCH
        else Conflict("A request with this Idempotency-Key is still in progress."))
    await error_response(scope, refusal)(scope, receive, send)  # type: ignore[arg-type]


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _replay(stored: StoredResponse, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers]
    headers.append((b"idempotent-replayed", b"true"))
    headers.append((b"content-length", str(len(stored.body)).encode()))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})


def _headers_json(response: StoredResponse) -> str:
    return orjson.dumps(response.headers).decode()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None

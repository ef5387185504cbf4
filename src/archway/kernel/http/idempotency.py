"""``Idempotency-Key`` on POST: replay the first answer, refuse a changed body or a race.

The key is scoped to its owner (the token's subject, else the client address) and stored in the
database, so it survives restarts and is shared by every process. A claim is taken before the
request runs; a first attempt that ends in a 5xx or an exception gives its claim up, so a retry
runs again instead of replaying a failure. A claim whose process died is taken over once its
lock lapses.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

import orjson
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archway.kernel.db import Database
from archway.kernel.errors import BadRequest, Conflict, InvalidInput
from archway.kernel.http.problems import error_response
from archway.kernel.statements import DriverWrite
from archway.kernel.tables import idempotency_keys

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_REPLAYED_HEADERS = {"content-type", "location", "etag", "consistency-token", "cache-control"}
IN_FLIGHT_LOCK_SECONDS = 60

OwnerOf = Callable[[Scope], Awaitable[str]]

# Built once: every POST with a key runs two of these.
_ROW = select(idempotency_keys).where(
    idempotency_keys.c.owner == bindparam("b_owner"), idempotency_keys.c.key == bindparam("b_key"))
_INSERT = DriverWrite(insert(idempotency_keys))
_RECLAIM = update(idempotency_keys).where(
    idempotency_keys.c.owner == bindparam("b_owner"), idempotency_keys.c.key == bindparam("b_key"))
_COMPLETE = DriverWrite(_RECLAIM.values(
    state="done", status_code=bindparam("b_status"), response_headers=bindparam("b_headers"),
    response_body=bindparam("b_body")))


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


class IdempotencyStore:
    def __init__(self, db: Database, ttl_seconds: int) -> None:
        self._db = db
        self._ttl = ttl_seconds
        self._next_purge = 0.0

    async def claim(
        self, owner: str, key: str, request_hash: str
    ) -> tuple[ClaimOutcome, StoredResponse | None]:
        now = int(time.time())
        await self._purge_expired(now)
        try:
            return await self._db.write(
                lambda conn: self._claim(conn, owner, key, request_hash, now))
        except IntegrityError:  # another process inserted the same key first
            return ClaimOutcome.IN_FLIGHT, None

    def _claim(
        self, conn: Connection, owner: str, key: str, request_hash: str, now: int
    ) -> tuple[ClaimOutcome, StoredResponse | None]:
        where = {"b_owner": owner, "b_key": key}
        row = conn.execute(_ROW, where).first()
        fresh = {
            "request_hash": request_hash, "state": "in_flight",
            "locked_until": now + IN_FLIGHT_LOCK_SECONDS, "expires_at": now + self._ttl,
            "status_code": None, "response_headers": None, "response_body": None,
        }
        if row is None:
            _INSERT.execute(conn, {"owner": owner, "key": key, **fresh})
            return ClaimOutcome.CLAIMED, None
        abandoned = (row.state == "in_flight" and row.locked_until <= now
                     and row.request_hash == request_hash)
        if row.expires_at <= now or abandoned:
            conn.execute(_RECLAIM.values(**fresh), where)
            return ClaimOutcome.CLAIMED, None
        if row.request_hash != request_hash:
            return ClaimOutcome.MISMATCH, None
        if row.state == "in_flight":
            return ClaimOutcome.IN_FLIGHT, None
        headers = [tuple(pair) for pair in orjson.loads(row.response_headers or "[]")]
        return ClaimOutcome.REPLAY, StoredResponse(
            row.status_code, headers, row.response_body or b"")

    async def complete(self, owner: str, key: str, response: StoredResponse) -> None:
        await self._db.write(lambda conn: _COMPLETE.execute(conn, {
            "b_owner": owner, "b_key": key, "b_status": response.status,
            "b_headers": orjson.dumps(response.headers).decode(), "b_body": response.body}))

    async def release(self, owner: str, key: str) -> None:
        await self._db.write(lambda conn: conn.execute(delete(idempotency_keys).where(
            idempotency_keys.c.owner == owner, idempotency_keys.c.key == key)))

    async def _purge_expired(self, now: int) -> None:
        if now < self._next_purge:
            return
        self._next_purge = now + 300
        await self._db.write(lambda conn: conn.execute(
            delete(idempotency_keys).where(idempotency_keys.c.expires_at <= now)))


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
        owner = await self.owner_of(scope)
        outcome, stored = await self.store.claim(owner, key, digest)
        if outcome is ClaimOutcome.MISMATCH:
            refusal: Exception = InvalidInput(
                "This Idempotency-Key was used with a different request body.")
        elif outcome is ClaimOutcome.IN_FLIGHT:
            refusal = Conflict("A request with this Idempotency-Key is still in progress.")
        elif outcome is ClaimOutcome.REPLAY and stored is not None:
            await _replay(stored, send)
            return
        else:
            await self._run_first(scope, body, send, owner, key)
            return
        await error_response(scope, refusal)(scope, receive, send)  # type: ignore[arg-type]

    async def _run_first(self, scope: Scope, body: bytes, send: Send, owner: str, key: str) -> None:
        status = 500
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.extend(
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() in _REPLAYED_HEADERS
                )
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        except BaseException:
            await self.store.release(owner, key)
            raise
        if status >= 500:
            await self.store.release(owner, key)
        else:
            await self.store.complete(owner, key, StoredResponse(status, headers, b"".join(chunks)))


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


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None

"""``Idempotency-Key`` on POST: replay the first answer, refuse a changed body or a race.

The key is scoped to its owner (the token's subject, else the client address) and stored in the
database, so it survives restarts and is shared by every process.

* **The claim commits with the request's first write** (:func:`~archway.kernel.db.
  joining_first_write`): the key is taken in the same transaction as the request's first effect,
  so two attempts can never both apply one, and a claim costs no transaction of its own. If the
  key is already taken, that write is refused (``Answered``) and the middleware replays the
  stored answer (same body), refuses another body (422), or answers 409 while the first attempt
  is still in flight.
* **The answer is written behind** (``AnswerWriter``, in :mod:`.idempotency_store`): the response goes out at once, and
  answers are stored in batches, a transaction per batch instead of one per request. Until its
  batch commits an answer is kept in memory, so this process replays it already; another process
  sees the first attempt in flight (409) for those few milliseconds.
* A request that never writes (a refusal, a read-only POST) claims its key and records its
  answer in one transaction after it ran, unless the key has an answer already.
* A first attempt that ends in a 5xx or an exception gives its claim up, so a retry runs again
  instead of replaying a failure. A claim whose process died is taken over once its lock lapses.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archway.kernel.db import joining_first_write
from archway.kernel.errors import BadRequest, Conflict, InvalidInput
from archway.kernel.http.bodies import body_once, read_body
from archway.kernel.http.idempotency_store import (
    Answered,
    ClaimOutcome,
    IdempotencyStore,
    KeyedRequest,
    StoredResponse,
)
from archway.kernel.http.problems import error_response

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_REPLAYED_HEADERS = {"content-type", "location", "etag", "consistency-token", "cache-control"}

OwnerOf = Callable[[Scope], Awaitable[str]]


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
        body = await read_body(receive)
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
        replay_body = body_once(body)

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

"""``Idempotency-Key`` on POST: a key's effect is applied once, whatever fails after it.

The key is scoped to its owner (the caller the route's guard admitted, else the token's subject
or the client address) and stored in the database, so it survives restarts and is shared by
every process. The guarantees are stated in ``docs/api.md`` (Idempotency); how they hold:

* **The caller is refused first.** The route's guard runs before the key is looked at
  (:func:`~archway.kernel.http.guard.admit_early`), so a replay never answers a caller the
  route would refuse; the route takes that decision as its own. Answers about the caller or
  the moment (401, 403, 429, 5xx) are never kept as a key's answer.
* **The claim commits with the request's first write** (:func:`~archway.kernel.db.
  joining_first_write`): a claim in the database therefore always means the effect is in.
  If the key is already taken, that write is refused (``Answered``) and the middleware
  replays the stored answer, refuses another body (422), answers 409 while the first attempt
  may still be running, or, once its lock lapsed or it failed after its commit, answers that it
  took effect (409 ``idempotent-request-applied``) or lets a route that keeps the key with
  its resource (:func:`keeps_idempotency_key`) answer from what was committed.
* **The answer is written behind** (``AnswerWriter``, in :mod:`.idempotency_store`), in
  batches: until its batch commits an answer is kept in memory (bounded), so this process
  replays it already; another process sees the first attempt in flight (409). A first attempt
  that took effect and then answered 5xx, raised or was cancelled is recorded as such, not
  given up. A process killed before its batch leaves the claim, which says the same.
* A request that never writes (a refusal, a read-only POST) claims its key and records its
  answer in one transaction after it ran, unless the key has an answer already.
* The same request is the same method, path and body; a JSON body is compared in canonical
  form (keys sorted, no whitespace), any other body byte for byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import orjson
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archway.kernel.db import joining_first_write
from archway.kernel.errors import (
    AlreadyApplied,
    ArchwayError,
    BadRequest,
    Conflict,
    InvalidInput,
    ServiceBusy,
)
from archway.kernel.http.bodies import body_once, read_body
from archway.kernel.http.guard import admit_early
from archway.kernel.http.idempotency_store import (
    Answered,
    ClaimOutcome,
    IdempotencyStore,
    Kept,
    KeyedRequest,
    StoredResponse,
    TookEffect,
)
from archway.kernel.http.problems import error_response

KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
"""What an ``Idempotency-Key`` may be (1 to 255 visible ASCII characters), as stated in OpenAPI."""
_KEY = re.compile(KEY_PATTERN)
_REPLAYED_HEADERS = {"content-type", "location", "etag", "consistency-token", "cache-control"}
# About the caller or the moment, not the request; or a redirect, which the client follows
# with the same key to another path (kept, it would answer that request as a mismatch).
_NOT_KEPT = {307, 308, 401, 403, 429}
_KEEPS_KEY = "__archway_keeps_idempotency_key__"

OwnerOf = Callable[[Scope], Awaitable[str]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., object])


def keeps_idempotency_key(endpoint: Endpoint) -> Endpoint:
    """Marks a route whose use case keeps the ``Idempotency-Key`` with what it creates (as
    placing an order does): when the first attempt took effect and its answer was lost, a
    retry runs the route again, which answers from what was committed instead of applying it
    twice, and that answer becomes the key's."""
    setattr(endpoint, _KEEPS_KEY, True)
    return endpoint


def request_hash(scope: Scope, body: bytes) -> str:
    """What makes two requests under one key the same: method, path and body (JSON bodies in
    canonical form, so whitespace and key order do not matter)."""
    canonical = body
    content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        with contextlib.suppress(orjson.JSONDecodeError):  # not JSON after all: as bytes
            canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(
        scope["method"].encode() + b" " + scope["path"].encode() + b"\n" + canonical
    ).hexdigest()


class Idempotency:
    """ASGI middleware, inside the HTTP policies; ``routes`` are the app's routes (their
    guards run first)."""

    def __init__(
        self, app: ASGIApp, *, store: IdempotencyStore, owner_of: OwnerOf,
        routes: Sequence[BaseRoute],
    ) -> None:
        self.app = app
        self.store = store
        self.owner_of = owner_of
        self._posts = [route for route in routes
                       if "POST" in (getattr(route, "methods", None) or ())]
        # Most keyed POSTs go to a path without parameters: found without matching each route.
        # (Only where routing would pick that route too: no route declared before it matches.)
        self._by_path: dict[str, BaseRoute] = {}
        for index, route in enumerate(self._posts):
            path = getattr(route, "path", "{")
            if "{" not in path and not any(
                    _may_match(earlier, path) for earlier in self._posts[:index]):
                self._by_path[path] = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if not _KEY.match(key):
            await _refuse(scope, send, BadRequest(
                "Idempotency-Key must be 1 to 255 visible ASCII characters."))
            return
        route = self._route_of(scope)
        try:
            principal = await admit_early(route, scope)
        except ArchwayError as refusal:
            await _refuse(scope, send, refusal)
            return
        owner = (f"sub:{principal.subject}" if principal is not None
                 else await self.owner_of(scope))
        body = await read_body(receive)
        request = KeyedRequest(owner, key, request_hash(scope, body))
        keeps_key = getattr(getattr(route, "endpoint", None), _KEEPS_KEY, False)
        earlier = self.store.answers.unwritten_outcome(request)
        if earlier is not None:
            await self._taken(scope, body, send, request, earlier, keeps_key=keeps_key)
        elif not self.store.answers.admits():
            await _refuse(scope, send, ServiceBusy(
                "Too many answers wait to be stored; retry shortly."))
        else:
            await self._run_first(scope, body, send, request, keeps_key=keeps_key)

    def _route_of(self, scope: Scope) -> BaseRoute | None:
        if not scope.get("root_path") and scope["path"] in self._by_path:
            return self._by_path[scope["path"]]
        for route in self._posts:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route
        return None

    async def _run_first(
        self, scope: Scope, body: bytes, send: Send, request: KeyedRequest, *, keeps_key: bool
    ) -> None:
        taken: Answered | None = None
        with joining_first_write(lambda conn: self.store.claim_within(conn, request)) as claim:
            # Once the claim has committed the answer streams out; before, it is held until
            # it is known to be the key's answer.
            response = _Captured(send, stream=lambda: claim.committed)
            try:
                await self.app(scope, body_once(body), response.capture)
            except Answered as answered:
                taken = answered
            except BaseException:
                if claim.committed:  # the effect is in: never run it again
                    self.store.answers.add(request, TookEffect(response.location))
                raise
        if taken is not None:  # out of the block: an answer from committed data claims nothing
            await self._taken(scope, body, send, request, (taken.outcome, taken.kept),
                              keeps_key=keeps_key)
            return
        if claim.committed:
            kept = response.stored()
            self.store.answers.add(
                request, TookEffect(kept.location) if kept.status >= 500 else kept)
            return
        if response.status < 500 and response.status not in _NOT_KEPT:
            outcome, earlier = await self.store.record_unclaimed(request, response.stored())
            if outcome is not ClaimOutcome.CLAIMED:
                await self._taken(scope, body, send, request, (outcome, earlier),
                                  keeps_key=keeps_key)
                return
        await response.release_held()

    async def _taken(
        self, scope: Scope, body: bytes, send: Send, request: KeyedRequest,
        outcome: tuple[ClaimOutcome, Kept | None], *, keeps_key: bool,
    ) -> None:
        """Answer a request whose key is taken: never by running its effect again."""
        what, kept = outcome
        if what is ClaimOutcome.REPLAY and isinstance(kept, StoredResponse):
            await _replay(kept, send)
        elif what is ClaimOutcome.APPLIED and keeps_key:
            await self._answer_from_committed(scope, body, send, request)
        elif what is ClaimOutcome.APPLIED:
            await _refuse(scope, send, AlreadyApplied(
                kept.location if isinstance(kept, TookEffect) else None))
        elif what is ClaimOutcome.MISMATCH:
            await _refuse(scope, send, InvalidInput(
                "This Idempotency-Key was used with a different request body."))
        else:
            await _refuse(scope, send, Conflict(
                "A request with this Idempotency-Key is still in progress."))

    async def _answer_from_committed(
        self, scope: Scope, body: bytes, send: Send, request: KeyedRequest
    ) -> None:
        # The route keeps the key with its resource: run again, it finds what the first
        # attempt committed. Its answer becomes the key's.
        response = _Captured(send, stream=lambda: False)
        await self.app(scope, body_once(body), response.capture)
        if response.status >= 500:
            await response.release_held()
            return
        self.store.answers.add(request, response.stored())
        await _replay(response.stored(), send)


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

    @property
    def location(self) -> str | None:
        return self.stored().location

    async def release_held(self) -> None:
        for message in self._held:
            await self._send(message)
        self._held.clear()

    def stored(self) -> StoredResponse:
        return StoredResponse(self.status, self.headers, b"".join(self.chunks))


async def _refuse(scope: Scope, send: Send, refusal: ArchwayError) -> None:
    await error_response(scope, refusal)(scope, body_once(b""), send)


async def _replay(stored: StoredResponse, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers]
    headers.append((b"idempotent-replayed", b"true"))
    headers.append((b"content-length", str(len(stored.body)).encode()))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body})


def _may_match(route: BaseRoute, path: str) -> bool:
    regex = getattr(route, "path_regex", None)
    return regex is None or regex.match(path) is not None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None

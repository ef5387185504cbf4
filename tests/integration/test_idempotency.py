"""The ``Idempotency-Key`` middleware and store over the real database, with small ASGI apps
whose effects are rows, so each test can count what ran and what was stored."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from starlette.types import Receive, Scope, Send

from archway.kernel.db import Database
from archway.kernel.http.idempotency import Idempotency
from archway.kernel.http.idempotency_store import (
    Answered,
    ClaimOutcome,
    IdempotencyStore,
    KeyedRequest,
    StoredResponse,
)
from archway.kernel.tables import idempotency_keys

OWNER = "tester"


def effect_row(number: int) -> dict[str, Any]:
    """An effect of the test apps: a row of its own in the kernel's table."""
    return {"owner": "effect", "key": f"effect-{number}", "request_hash": "-", "state": "done",
            "locked_until": 0, "expires_at": int(time.time()) + 3600}


async def effects(db: Database) -> int:
    return int(await db.read(lambda conn: conn.execute(
        select(func.count()).select_from(idempotency_keys)
        .where(idempotency_keys.c.owner == "effect")).scalar_one()))


async def stored_row(db: Database, key: str) -> Any:
    return await db.read(lambda conn: conn.execute(select(idempotency_keys).where(
        idempotency_keys.c.owner == OWNER, idempotency_keys.c.key == key)).first())


class App:
    """An ASGI app that writes ``writes`` effect rows, then answers ``status`` (or raises)."""

    def __init__(self, db: Database, status: int = 201, *, writes: int = 1,
                 raises: bool = False) -> None:
        self.db, self.status, self.writes, self.raises = db, status, writes, raises
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        self.calls += 1
        for _ in range(self.writes):
            number = await effects(self.db) + self.calls * 100

            def write(conn: Connection, number: int = number) -> None:
                conn.execute(insert(idempotency_keys).values(**effect_row(number)))

            await self.db.write(write)
        if self.raises:
            raise RuntimeError("the app failed")
        body = f'{{"call": {self.calls}}}'.encode()
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"location", b"/things/1")]})
        await send({"type": "http.response.body", "body": body})


Post = Callable[..., Awaitable[httpx.Response]]


def poster(app: App, store: IdempotencyStore) -> Post:
    async def owner_of(_scope: Scope) -> str:
        return OWNER

    guarded = Idempotency(app, store=store, owner_of=owner_of, routes=())

    async def post(key: str, body: bytes = b'{"a": 1}',
                   content_type: str | None = None) -> httpx.Response:
        transport = httpx.ASGITransport(app=guarded, raise_app_exceptions=False)
        headers = {"Idempotency-Key": key}
        if content_type is not None:
            headers["Content-Type"] = content_type
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.post("/things", content=body, headers=headers)

    return post


@pytest.fixture
async def store(database: Database) -> Any:
    """A store whose answers wait in memory until a test writes them (a long linger)."""
    idempotency = IdempotencyStore(database, 3600, answer_linger_seconds=60)
    yield idempotency
    await idempotency.answers.stop()


def keyed(key: str, body: bytes = b'{"a": 1}') -> KeyedRequest:
    return KeyedRequest(OWNER, key, hashlib.sha256(b"POST /things\n" + body).hexdigest())


async def test_the_claim_commits_with_the_first_write_and_the_answer_is_written_behind(
    database: Database, store: IdempotencyStore
) -> None:
    app = App(database)
    post = poster(app, store)
    first = await post("k-1")
    assert first.status_code == 201
    claim = await stored_row(database, "k-1")
    assert (claim.state, await effects(database)) == ("in_flight", 1)  # one transaction
    again = await post("k-1")  # answered from memory, before the answer is written
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content and again.headers["location"] == "/things/1"

    another_process = IdempotencyStore(database, 3600)
    with pytest.raises(Answered) as seen:
        await database.write(lambda conn: another_process.claim_within(conn, keyed("k-1")))
    assert seen.value.outcome is ClaimOutcome.IN_FLIGHT

    await store.answers.flush()
    written = await stored_row(database, "k-1")
    assert (written.state, written.status_code, written.response_body) == (
        "done", 201, first.content)
    with pytest.raises(Answered) as seen:
        await database.write(lambda conn: another_process.claim_within(conn, keyed("k-1")))
    assert seen.value.outcome is ClaimOutcome.REPLAY
    assert isinstance(seen.value.kept, StoredResponse) and seen.value.kept.body == first.content
    assert app.calls == 1 and await effects(database) == 1


async def test_another_body_under_a_queued_or_written_answer_is_422(
    database: Database, store: IdempotencyStore
) -> None:
    post = poster(App(database), store)
    assert (await post("k-2")).status_code == 201
    assert (await post("k-2", b'{"a": 2}')).status_code == 422  # queued
    await store.answers.flush()
    assert (await post("k-2", b'{"a": 2}')).status_code == 422  # written
    assert await effects(database) == 1


async def test_an_answer_given_without_writing_is_recorded_and_replayed(
    database: Database, store: IdempotencyStore
) -> None:
    app = App(database, 422, writes=0)
    post = poster(app, store)
    first = await post("k-3")
    assert first.status_code == 422 and "idempotent-replayed" not in first.headers
    assert (await stored_row(database, "k-3")).state == "done"  # recorded before it went out
    again = await post("k-3")
    assert again.status_code == 422 and again.headers["idempotent-replayed"] == "true"
    # The retry ran again (a request that writes nothing has no effect to repeat), but the
    # first answer is the one that went out.
    assert again.content == first.content and app.calls == 2


async def test_a_retry_that_would_write_replays_an_answer_given_without_writing(
    database: Database, store: IdempotencyStore
) -> None:
    refusing = poster(App(database, 422, writes=0), store)
    first = await refusing("k-9")
    accepting = App(database, 201)  # say the refusal's cause went away meanwhile
    again = await poster(accepting, store)("k-9")
    assert again.status_code == 422 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert accepting.calls == 1 and await effects(database) == 0  # its write was refused


async def test_an_answer_without_writing_defers_to_a_claim_taken_meanwhile(
    database: Database, store: IdempotencyStore
) -> None:
    app = App(database, 200, writes=0)
    post = poster(app, store)
    another_process = IdempotencyStore(database, 3600)
    await database.write(lambda conn: another_process.claim_within(conn, keyed("k-4")))
    held = await post("k-4")
    assert held.status_code == 409  # the answer it computed is not sent: the key is taken
    assert held.headers["content-type"] == "application/problem+json"


async def test_a_later_write_of_the_request_does_not_claim_again(
    database: Database, store: IdempotencyStore
) -> None:
    post = poster(App(database, writes=3), store)
    assert (await post("k-6")).status_code == 201
    assert await effects(database) == 3


class FailingOnce:
    """The real database, whose next ``failures`` writes fail as a lost connection would."""

    def __init__(self, db: Database, failures: int) -> None:
        self._db, self.failures = db, failures

    async def read(self, work: Any) -> Any:
        return await self._db.read(work)

    async def write(self, work: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise OperationalError("INSERT", {}, Exception("connection lost"))
        return await self._db.write(work)


async def test_a_batch_that_fails_stays_queued_and_is_written_later(
    database: Database,
) -> None:
    store = IdempotencyStore(database, 3600, answer_linger_seconds=0.001)
    await database.write(lambda conn: store.claim_within(conn, keyed("k-7")))
    flaky = IdempotencyStore(FailingOnce(database, 1), 3600, answer_linger_seconds=0.001)  # type: ignore[arg-type]
    flaky.answers.add(keyed("k-7"), StoredResponse(201, [], b"{}"))
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (await stored_row(database, "k-7")).state != "done":
            await asyncio.sleep(0.05)
        assert (await stored_row(database, "k-7")).state == "done"
    finally:
        await flaky.answers.stop()
        await store.answers.stop()


async def test_stopping_writes_what_is_queued(database: Database, store: IdempotencyStore) -> None:
    post = poster(App(database), store)
    await post("k-8")
    await store.answers.stop()
    assert (await stored_row(database, "k-8")).state == "done"


async def test_the_same_json_with_other_whitespace_or_key_order_is_the_same_request(
    database: Database, store: IdempotencyStore
) -> None:
    app = App(database)
    post = poster(app, store)
    first = await post("k-10", b'{"a": 1, "b": {"y": [1, 2], "x": "z"}}', "application/json")
    same = await post(
        "k-10", b'{"b":{"x":"z","y":[1,2]},\n "a":1}', "application/json; charset=utf-8")
    assert (first.status_code, same.status_code) == (201, 201)
    assert same.headers["idempotent-replayed"] == "true"
    other = await post("k-10", b'{"a": 1, "b": {"y": [2, 1], "x": "z"}}', "application/json")
    assert other.status_code == 422  # arrays keep their order
    assert app.calls == 1 and await effects(database) == 1


async def test_other_bodies_compare_byte_for_byte(
    database: Database, store: IdempotencyStore
) -> None:
    post = poster(App(database), store)
    assert (await post("k-11", b'{"a": 1}', "text/plain")).status_code == 201
    assert (await post("k-11", b'{"a":1}', "text/plain")).status_code == 422
    assert (await post("k-12", b"not json {", "application/json")).status_code == 201
    assert (await post("k-12", b"not json  {", "application/json")).status_code == 422
    assert await effects(database) == 2


async def test_a_refusal_of_the_caller_is_not_kept_as_the_keys_answer(
    database: Database, store: IdempotencyStore
) -> None:
    app = App(database, 403, writes=0)
    post = poster(app, store)
    assert (await post("k-13")).status_code == 403
    assert await stored_row(database, "k-13") is None
    app.status = 201
    app.writes = 1
    assert (await post("k-13")).status_code == 201  # the caller may now; it runs
    assert app.calls == 2 and await effects(database) == 1


async def test_answers_waiting_in_memory_are_bounded_and_a_full_queue_is_a_503(
    database: Database,
) -> None:
    store = IdempotencyStore(database, 3600, answer_linger_seconds=60, max_queued_answers=2)
    app = App(database)
    post = poster(app, store)
    try:
        assert [(await post(key)).status_code for key in ("q-1", "q-2")] == [201, 201]
        full = await post("q-3")
        assert full.status_code == 503 and full.headers["retry-after"] == "1"
        assert full.headers["content-type"] == "application/problem+json"
        assert app.calls == 2  # refused before it ran
        assert (await post("q-1")).headers["idempotent-replayed"] == "true"  # from memory
        await store.answers.flush()
        assert (await post("q-3")).status_code == 201
        assert app.calls == 3 and await effects(database) == 3
    finally:
        await store.answers.stop()


async def test_while_answers_cannot_be_stored_new_keyed_requests_are_503(
    database: Database,
) -> None:
    down = FailingOnce(database, 3)  # the database refuses the next three batches
    store = IdempotencyStore(down, 3600, answer_linger_seconds=0.001)  # type: ignore[arg-type]
    app = App(database)
    post = poster(app, store)
    try:
        assert (await post("d-1")).status_code == 201
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and store.answers.admits():
            await asyncio.sleep(0.01)
        refused = await post("d-2")
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert app.calls == 1
        deadline = time.monotonic() + 10  # the batch is retried until it is stored
        while time.monotonic() < deadline and (await stored_row(database, "d-1")).state != "done":
            await asyncio.sleep(0.05)
        assert (await stored_row(database, "d-1")).state == "done"
        assert (await post("d-2")).status_code == 201
    finally:
        await store.answers.stop()


async def test_stopping_with_answers_the_database_refuses_logs_them_and_stops(
    database: Database, caplog: pytest.LogCaptureFixture,
) -> None:
    store = IdempotencyStore(database, 3600, answer_linger_seconds=0.001)
    await database.write(lambda conn: store.claim_within(conn, keyed("s-1")))
    down = IdempotencyStore(FailingOnce(database, 1_000), 3600, answer_linger_seconds=60)  # type: ignore[arg-type]
    down.answers.add(keyed("s-1"), StoredResponse(201, [], b"{}"))
    with caplog.at_level(logging.WARNING, logger="archway.idempotency"):
        await down.answers.stop()  # returns: the shutdown it is part of goes on
    assert "1 idempotency answers could not be stored at shutdown" in caplog.text
    assert (await stored_row(database, "s-1")).state != "done"  # the claim alone stays

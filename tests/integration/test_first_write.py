"""``joining_first_write``: a step that commits with the calling task's first write, only."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from archway.kernel.db import Database, joining_first_write
from archway.kernel.tables import idempotency_keys


def row(owner: str, key: str) -> dict[str, object]:
    return {"owner": owner, "key": key, "request_hash": "-", "state": "done", "locked_until": 0,
            "expires_at": int(time.time()) + 60}


async def count(db: Database, owner: str) -> int:
    return int(await db.read(lambda conn: conn.execute(
        select(func.count()).select_from(idempotency_keys)
        .where(idempotency_keys.c.owner == owner)).scalar_one()))


class Steps:
    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, conn: Connection) -> None:
        self.runs += 1
        conn.execute(insert(idempotency_keys).values(**row("step", f"run-{self.runs}")))


def effect(key: str, *, fail: bool = False):  # type: ignore[no-untyped-def]
    def work(conn: Connection) -> None:
        conn.execute(insert(idempotency_keys).values(**row("effect", key)))
        if fail:
            raise RuntimeError("the unit fails after its effect")

    return work


async def test_the_step_commits_with_the_first_write_only(database: Database) -> None:
    step = Steps()
    with joining_first_write(step) as joined:
        await database.read(lambda conn: conn.execute(select(1)).scalar())  # reads do not join
        assert step.runs == 0
        await database.write(effect("a"))
        assert joined.committed
        await database.write(effect("b"))
    await database.write(effect("c"))  # outside the block
    assert (step.runs, await count(database, "step"), await count(database, "effect")) == (1, 1, 3)


async def test_a_write_that_rolls_back_takes_the_step_with_it(database: Database) -> None:
    step = Steps()
    with joining_first_write(step) as joined:
        with pytest.raises(RuntimeError):
            await database.write(effect("a", fail=True))
        assert not joined.committed and await count(database, "step") == 0
        await database.write(effect("b"))  # the next write tries again
        assert joined.committed
    assert await count(database, "step") == 1 and await count(database, "effect") == 1


async def test_a_step_that_raises_refuses_the_write(database: Database) -> None:
    def refuse(_conn: Connection) -> None:
        raise LookupError("taken")

    with joining_first_write(refuse) as joined, pytest.raises(LookupError):
        await database.write(effect("a"))
    assert not joined.committed and await count(database, "effect") == 0


async def test_tasks_spawned_in_the_block_do_not_run_the_step(database: Database) -> None:
    step = Steps()
    with joining_first_write(step) as joined:
        await asyncio.create_task(database.write(effect("background")))
        assert step.runs == 0 and not joined.committed
        await database.write(effect("own"))
    assert step.runs == 1 and await count(database, "effect") == 2

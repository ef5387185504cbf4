"""The access-token denylist (identity/revoked_tokens.py) over the fake store and the real one
alike: a revocation is refused at once where it was made and after one reload interval in
another process, the store is read at most once per interval whatever the load, expired ids
go, and a store that cannot answer leaves the last known set in place."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from archway.identity.revoked_tokens import Denylist
from archway.identity.store import RevokedTokenRepository
from archway.kernel.db import Database
from archway.kernel.errors import ServiceBusy
from archway.topologies.monolith import Monolith
from tests.fakes import FakeRevokedTokens, FakeUnitsOfWork

T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingUnits(FakeUnitsOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.down = False

    async def read(self, work: Callable[[Any], T]) -> T:
        self.reads += 1
        if self.down:
            raise ServiceBusy("the database refuses connections")
        return await super().read(work)


@pytest.fixture(params=["fake", "real"])
def two_processes(
    request: pytest.FixtureRequest, graph: Monolith, database: Database
) -> tuple[Denylist[Any], Denylist[Any], Clock]:
    """Two denylists on one store, as two processes would have, on one clock."""
    clock = Clock()
    if request.param == "fake":
        units: Any = FakeUnitsOfWork()
        repository: Any = FakeRevokedTokens
    else:
        units, repository = graph.db, RevokedTokenRepository
    return (Denylist(units, repository, refresh_seconds=1.0, clock=clock),
            Denylist(units, repository, refresh_seconds=1.0, clock=clock), clock)


async def test_a_revocation_is_seen_at_once_here_and_after_an_interval_elsewhere(
    two_processes: tuple[Denylist[Any], Denylist[Any], Clock],
) -> None:
    here, elsewhere, clock = two_processes
    assert not await here.contains("jti-1") and not await elsewhere.contains("jti-1")
    await here.revoke("jti-1", int(time.time()) + 900)
    await here.revoke("jti-1", int(time.time()) + 900)  # twice changes nothing
    assert await here.contains("jti-1")
    assert not await elsewhere.contains("jti-1")  # its set is less than an interval old
    clock.now += 1.0
    assert await elsewhere.contains("jti-1")
    assert not await elsewhere.contains("jti-2")


async def test_an_expired_revocation_is_forgotten(
    two_processes: tuple[Denylist[Any], Denylist[Any], Clock],
) -> None:
    here, elsewhere, clock = two_processes
    await here.revoke("gone", int(time.time()) - 5)  # its token is refused by its exp anyway
    clock.now += 1.0
    assert not await elsewhere.contains("gone") and not await here.contains("gone")


async def test_the_store_is_read_once_per_interval_whatever_the_load() -> None:
    units, clock = CountingUnits(), Clock()
    denylist = Denylist(units, FakeRevokedTokens, refresh_seconds=1.0, clock=clock)
    for _ in range(1000):
        await denylist.contains("jti")
    assert units.reads == 1
    clock.now += 1.0
    await denylist.contains("jti")
    assert units.reads == 2


async def test_a_store_that_cannot_answer_keeps_the_last_known_set(
    caplog: pytest.LogCaptureFixture,
) -> None:
    units, clock = CountingUnits(), Clock()
    writer = Denylist(units, FakeRevokedTokens, refresh_seconds=1.0, clock=clock)
    reader = Denylist(units, FakeRevokedTokens, refresh_seconds=1.0, clock=clock)
    await writer.revoke("jti-1", int(time.time()) + 900)
    assert await reader.contains("jti-1")
    units.down = True
    clock.now += 1.0
    assert await reader.contains("jti-1")  # still refused
    assert not await reader.contains("jti-2")  # and nothing else is
    assert "cannot be reloaded" in caplog.text
    reads = units.reads
    await reader.contains("jti-1")
    assert units.reads == reads  # not asked again before the interval is over

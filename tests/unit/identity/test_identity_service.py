"""Identity use cases, run against the in-memory fakes and against the real store alike.

The same tests pass on both, which keeps the fakes honest; most run in microseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest

from archway.identity.client import InProcessIdentityClient
from archway.identity.passwords import PasswordHasher
from archway.identity.service import IdentityService, UserChanges
from archway.kernel.auth.principal import Principal
from archway.kernel.db import Database
from archway.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound
from archway.kernel.pagination import PageRequest
from archway.topologies.monolith import Monolith
from tests.fakes import (
    FakeAuthorizationCodes,
    FakeClients,
    FakeRefreshTokens,
    FakeUnitsOfWork,
    FakeUsers,
)

T = TypeVar("T")


@pytest.fixture(params=["fake", "real"])
async def service(
    request: pytest.FixtureRequest, graph: Monolith, database: Database
) -> AsyncIterator[IdentityService[Any]]:
    if request.param == "fake":
        yield IdentityService(FakeUnitsOfWork(), graph.hasher, graph.keys,
                              graph.identity._issuer, users=FakeUsers, clients=FakeClients,
                              refresh_tokens=FakeRefreshTokens, codes=FakeAuthorizationCodes)
    else:
        yield graph.identity  # the real store; `database` empties its tables afterwards


def me(user_id: str, *scopes: str, admin: bool = False) -> Principal:
    roles = frozenset({"admin"} if admin else {"customer"})
    return Principal(user_id, frozenset(scopes), roles)


async def test_register_then_read_yourself(service: IdentityService[Any]) -> None:
    user = await service.register("Ada@Example.com", "long enough", "Ada")
    assert user.email == "ada@example.com" and user.roles == {"customer"}
    assert (await service.me(me(user.id, "profile"))).id == user.id


async def test_a_taken_email_is_answered_like_a_new_one_and_changes_nothing(
    service: IdentityService[Any],
) -> None:
    ada = await service.register("ada@example.com", "long enough", "Ada")
    again = await service.register("ADA@example.com", "another password", "Ada again")
    assert again.email == "ada@example.com" and again.name == "Ada again"
    assert again.roles == {"customer"} and again.id != ada.id
    admin = me("someone", "users:read", admin=True)
    with pytest.raises(NotFound):  # nothing was stored under the answer's id
        await service.get_user(admin, again.id)
    assert [u.id for u in (await service.list_users(admin, PageRequest(limit=10))).items] == [
        ada.id]
    assert await service.check_password("ada@example.com", "long enough") == ada
    assert await service.check_password("ada@example.com", "another password") is None


async def test_concurrent_registrations_of_one_email_store_one_user(
    service: IdentityService[Any],
) -> None:
    answers = await asyncio.gather(*(
        service.register("race@example.com", f"password {n}", f"Racer {n}") for n in range(4)))
    admin = me("someone", "users:read", admin=True)
    stored = (await service.list_users(admin, PageRequest(limit=10))).items
    assert len(stored) == 1 and stored[0].id in {answer.id for answer in answers}


class CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_kib=64, workers=1, queue_timeout=5)
        self.hashed = 0
        self.verified = 0

    async def hash(self, password: str) -> str:
        self.hashed += 1
        return await super().hash(password)

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verified += 1
        return await super().verify(password_hash, password)


class CountingUnits(FakeUnitsOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.reads = self.writes = 0

    async def read(self, work: Callable[[Any], T]) -> T:
        self.reads += 1
        return await super().read(work)

    async def write(self, work: Callable[[Any], T]) -> T:
        self.writes += 1
        return await super().write(work)


@pytest.mark.parametrize("use", ["register", "check_password"])
async def test_a_known_and_an_unknown_email_cost_the_same(graph: Monolith, use: str) -> None:
    """Timing tells nothing either: both paths hash (or verify) one password with the same
    argon2 parameters and run the same units of work."""
    hasher, units = CountingHasher(), CountingUnits()
    service = IdentityService(units, hasher, graph.keys, graph.identity._issuer, users=FakeUsers,
                              clients=FakeClients, refresh_tokens=FakeRefreshTokens,
                              codes=FakeAuthorizationCodes)
    await service.register("ada@example.com", "long enough", "Ada")
    work = []
    for email in ("ada@example.com", "nobody@example.com"):
        hasher.hashed = hasher.verified = units.reads = units.writes = 0
        if use == "register":
            await service.register(email, "some password", "Someone")
        else:
            await service.check_password(email, "some password")
        work.append((hasher.hashed + hasher.verified, units.reads, units.writes))
    assert work[0] == work[1] and work[0][0] == 1
    hasher.close()


async def test_register_validates_before_hashing(service: IdentityService[Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        await service.register("nope", "short", "")
    assert len(caught.value.errors) == 3


async def test_password_check(service: IdentityService[Any]) -> None:
    await service.register("ada@example.com", "long enough", "Ada")
    assert await service.check_password("ADA@example.com", "long enough") is not None
    assert await service.check_password("ada@example.com", "wrong password") is None
    assert await service.check_password("nobody@example.com", "long enough") is None


async def test_only_self_or_admin_reads_a_user(service: IdentityService[Any]) -> None:
    ada = await service.register("ada@example.com", "long enough", "Ada")
    bob = await service.register("bob@example.com", "long enough", "Bob")
    with pytest.raises(Forbidden):
        await service.get_user(me(bob.id, "profile"), ada.id)
    assert (await service.get_user(me("x", "users:read", admin=True), ada.id)).id == ada.id


async def test_an_email_change_keeps_emails_unique_and_rolls_back(
    service: IdentityService[Any],
) -> None:
    ada = await service.register("ada@example.com", "long enough", "Ada")
    await service.register("bob@example.com", "long enough", "Bob")
    with pytest.raises(Conflict):
        await service.update_user(me(ada.id, "profile"), ada.id, UserChanges(
            email="bob@example.com", name="Changed"))
    unchanged = await service.get_user(me(ada.id, "profile"), ada.id)
    assert unchanged.email == "ada@example.com" and unchanged.name == "Ada"


async def test_a_password_change_takes_effect(service: IdentityService[Any]) -> None:
    ada = await service.register("ada@example.com", "long enough", "Ada")
    await service.update_user(me(ada.id, "profile"), ada.id, UserChanges(password="new secret!"))
    assert await service.check_password("ada@example.com", "new secret!") is not None
    assert await service.check_password("ada@example.com", "long enough") is None


async def test_delete_then_not_found(service: IdentityService[Any]) -> None:
    ada = await service.register("ada@example.com", "long enough", "Ada")
    await service.delete_user(me(ada.id, "profile"), ada.id)
    admin = me("x", "users:read", "users:write", admin=True)
    with pytest.raises(NotFound):
        await service.get_user(admin, ada.id)
    with pytest.raises(NotFound):
        await service.delete_user(admin, ada.id)


async def test_listing_pages_by_offset_and_by_cursor(service: IdentityService[Any]) -> None:
    for name in ("a", "b", "c"):
        await service.register(f"{name}@example.com", "long enough", name)
    admin = me("x", "users:read", admin=True)
    first = await service.list_users(admin, PageRequest(limit=2, offset=0))
    assert first.total == 3 and len(first.items) == 2
    cursor_page = await service.list_users(admin, PageRequest(limit=2))
    rest = await service.list_users(admin, PageRequest(limit=2, after=cursor_page.next_after))
    assert len(rest.items) == 1 and rest.next_after is None
    with pytest.raises(Forbidden):
        await service.list_users(me("x", "users:read"), PageRequest())


async def test_cached_reads_never_outlive_a_write_in_this_process(graph: Monolith) -> None:
    service = IdentityService(FakeUnitsOfWork(), graph.hasher, graph.keys,
                              graph.identity._issuer, users=FakeUsers, clients=FakeClients,
                              refresh_tokens=FakeRefreshTokens, codes=FakeAuthorizationCodes,
                              cache_ttl_seconds=60)
    ada = await service.register("ada@example.com", "long enough", "Ada")
    caller = me(ada.id, "profile")
    assert (await service.me(caller)).name == "Ada"
    await service.update_user(caller, ada.id, UserChanges(name="Ada L."))
    assert (await service.me(caller)).name == "Ada L."
    await service.delete_user(caller, ada.id)
    with pytest.raises(NotFound):
        await service.me(caller)


async def test_a_deleted_user_no_longer_exists_at_once(service: IdentityService[Any]) -> None:
    """What the guard asks of every token's subject; a deletion drops the cached answer."""
    user = await service.register("ada@example.com", "long enough", "Ada")
    assert await service.user_exists(user.id)
    await service.delete_user(me(user.id, "profile"), user.id)
    assert not await service.user_exists(user.id)
    assert not await service.user_exists("no-such-user")


async def test_the_public_port_tells_whether_a_user_exists(service: IdentityService[Any]) -> None:
    client = InProcessIdentityClient(service)
    user = await service.register("ada@example.com", "long enough", "Ada")
    assert await client.user_exists(user.id) is True
    await service.delete_user(me(user.id, "profile"), user.id)
    assert await client.user_exists(user.id) is False
    assert await client.user_exists("not-an-id") is False

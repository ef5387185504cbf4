"""Identity use cases, run against the in-memory fakes and against the real store alike.

The same tests pass on both, which keeps the fakes honest; most run in microseconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from archway.identity.client import InProcessIdentityClient
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


async def test_register_refuses_duplicates_case_insensitively(
    service: IdentityService[Any],
) -> None:
    await service.register("ada@example.com", "long enough", "Ada")
    with pytest.raises(Conflict):
        await service.register("ADA@example.com", "long enough", "Ada again")


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

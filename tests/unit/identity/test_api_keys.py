"""API keys: made with machine scopes and a plan, shown once and stored as digests, verified
per request from a short cache, revoked at once in this process, last use written behind.

Run against the in-memory fakes and the real store alike, like the other identity use cases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from archway.identity.api_key_store import ApiKeyRepository
from archway.identity.api_keys import ApiKeyService
from archway.identity.domain import API_KEY_PREFIX
from archway.kernel.auth.principal import Principal
from archway.kernel.db import Database
from archway.kernel.errors import Forbidden, InvalidInput, NotFound
from archway.kernel.pagination import PageRequest
from tests.fakes import FakeApiKeys, FakeUnitsOfWork

ADMIN = Principal("admin", frozenset({"users:read", "users:write"}), frozenset({"admin"}))
CUSTOMER = Principal("alice", frozenset({"users:read", "users:write"}), frozenset({"customer"}))
MakeService = Callable[..., ApiKeyService[Any]]


@pytest.fixture(params=["fake", "real"])
def make(request: pytest.FixtureRequest, database: Database) -> MakeService:
    """``make(cache_ttl_seconds=…, last_used_every_seconds=…)``: a service on the fakes or on
    the real store (which ``database`` empties after the test)."""
    fake = FakeUnitsOfWork()

    def build(**options: Any) -> ApiKeyService[Any]:
        if request.param == "fake":
            return ApiKeyService(fake, keys=FakeApiKeys, **options)
        return ApiKeyService(database, keys=ApiKeyRepository, **options)

    return build


async def test_a_key_is_shown_once_stored_as_its_digest_and_acts_as_key_id(
    make: MakeService,
) -> None:
    service = make()
    key, value = await service.create("Acme stock sync", "partner", frozenset({"reports:read"}))
    assert value.startswith(API_KEY_PREFIX) and len(value) == len(API_KEY_PREFIX) + 43
    stored = await service.get(key.id)
    assert stored == key and stored.digest == hashlib.sha256(value.encode()).hexdigest()
    assert value not in repr(stored)
    holder = await service.verify(value)
    assert holder is not None
    assert holder.principal == Principal(f"key:{key.id}", frozenset({"reports:read"}))
    assert holder.principal.is_api_key and not holder.principal.is_admin
    assert holder.plan == "partner"
    await service.settle()


async def test_every_key_is_new(make: MakeService) -> None:
    service = make()
    first = await service.create("A", "default", frozenset())
    second = await service.create("A", "default", frozenset())
    assert first[0].id != second[0].id and first[1] != second[1]


@pytest.mark.parametrize(("consumer", "plan", "scopes", "field"), [
    ("Acme", "default", {"profile"}, "scopes"),  # a user's own resources: no key's
    ("Acme", "default", {"orders:write"}, "scopes"),
    ("Acme", "default", {"users:write"}, "scopes"),  # an admin's: a key is nobody's account
    ("Acme", "anonymous", set(), "plan"),
    ("Acme", "gold", set(), "plan"),
    ("   ", "default", set(), "consumer"),
    ("Acme\x00", "default", set(), "consumer"),
])
async def test_what_a_key_may_not_be(
    make: MakeService, consumer: str, plan: str, scopes: set[str], field: str,
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await make().create(consumer, plan, frozenset(scopes))
    assert [error.path for error in refused.value.errors] == [(field,)]


@pytest.mark.parametrize("value", [
    "", "ak_", "not-a-key", API_KEY_PREFIX + "A" * 43, API_KEY_PREFIX + "A" * 42 + "\x00",
    API_KEY_PREFIX + "é" * 43, "Bearer " + "A" * 43,
])
async def test_a_value_that_is_no_key_identifies_nobody(make: MakeService, value: str) -> None:
    service = make()
    await service.create("Acme", "default", frozenset())
    assert await service.verify(value) is None


async def test_a_revoked_key_is_refused_at_once_even_from_a_cache(make: MakeService) -> None:
    service = make(cache_ttl_seconds=60)
    key, value = await service.create("Acme", "default", frozenset({"reports:read"}))
    assert await service.verify(value) is not None  # now cached
    revoked = await service.revoke(key.id)
    assert revoked.revoked_at is not None
    assert await service.verify(value) is None
    again = await service.revoke(key.id)  # twice: nothing changes
    assert again.revoked_at == revoked.revoked_at
    assert (await service.get(key.id)).revoked_at == revoked.revoked_at
    await service.settle()


async def test_another_process_sees_a_revocation_within_the_cache_ttl(
    make: MakeService,
) -> None:
    this, other = make(cache_ttl_seconds=60), make(cache_ttl_seconds=0)
    key, value = await other.create("Acme", "default", frozenset())
    assert await this.verify(value) is not None
    await other.revoke(key.id)
    assert await this.verify(value) is not None  # cached: the documented staleness
    assert await make(cache_ttl_seconds=60).verify(value) is None  # a fresh cache: refused
    await this.settle()


@pytest.mark.parametrize("key_id", ["0190f7a2-0000-7000-8000-000000000000", "nope", "a\x00b"])
async def test_unknown_keys_are_not_found(make: MakeService, key_id: str) -> None:
    service = make()
    with pytest.raises(NotFound):
        await service.get(key_id)
    with pytest.raises(NotFound):
        await service.revoke(key_id)


async def test_the_last_use_is_written_behind_at_most_once_a_period(
    make: MakeService,
) -> None:
    service = make(last_used_every_seconds=3600)
    key, value = await service.create("Acme", "default", frozenset())
    assert key.last_used_at is None
    await service.verify(value)
    await service.settle()
    first = (await service.get(key.id)).last_used_at
    assert first is not None
    for _ in range(5):
        await service.verify(value)
    await service.settle()
    assert (await service.get(key.id)).last_used_at == first  # within the period: no write

    eager = make(last_used_every_seconds=0)
    await eager.verify(value)
    await eager.settle()
    later = (await eager.get(key.id)).last_used_at
    assert later is not None and later > first


async def test_a_failing_write_behind_fails_no_request(
    make: MakeService, monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = make()
    key, value = await service.create("Acme", "default", frozenset())

    def broken(self: object, used: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(FakeApiKeys, "touch", broken)
    monkeypatch.setattr(ApiKeyRepository, "touch", broken)
    assert await service.verify(value) is not None
    await service.settle()
    assert (await service.get(key.id)).last_used_at is None


async def test_admins_manage_keys_and_nobody_else(make: MakeService) -> None:
    service = make()
    with pytest.raises(Forbidden):
        await service.create_as(CUSTOMER, "Acme", "default", frozenset())
    created = [(await service.create_as(ADMIN, f"Acme {n}", "default", frozenset()))[0]
               for n in range(3)]
    for call in (lambda p: service.get_as(p, created[0].id),
                 lambda p: service.page_as(p, PageRequest()),
                 lambda p: service.revoke_as(p, created[0].id)):
        with pytest.raises(Forbidden):
            await call(CUSTOMER)
        with pytest.raises(Forbidden):  # an admin without the scope
            await call(Principal("admin", frozenset(), frozenset({"admin"})))
    assert await service.get_as(ADMIN, created[1].id) == created[1]
    offset = await service.page_as(ADMIN, PageRequest(limit=2, offset=1))
    assert [k.id for k in offset.items] == [k.id for k in created[1:]] and offset.total == 3
    first = await service.page_as(ADMIN, PageRequest(limit=2))
    assert [k.id for k in first.items] == [k.id for k in created[:2]]
    assert first.next_after is not None
    rest = await service.page_as(ADMIN, PageRequest(limit=2, after=first.next_after))
    assert [k.id for k in rest.items] == [created[2].id] and rest.next_after is None
    with pytest.raises(InvalidInput):
        await service.page_as(ADMIN, PageRequest(limit=2, after=("not-an-id",)))
    assert (await service.revoke_as(ADMIN, created[0].id)).revoked_at is not None

"""OAuth clients: registration rules, secrets shown once and stored as digests, revocation.

Run against the in-memory fakes and the real store alike, like the other identity use cases.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from archway.identity.domain import OAuthClient, secret_digest
from archway.identity.service import ClientSpec, IdentityService
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

MACHINE = ClientSpec("reporting", "Reporting job", public=False,
                     grant_types=frozenset({"client_credentials"}),
                     scopes=frozenset({"reports:read"}))
BROWSER = ClientSpec("shop-web", "Shop web app", public=True,
                     grant_types=frozenset({"authorization_code", "refresh_token"}),
                     scopes=frozenset({"profile", "orders:read"}),
                     redirect_uris=("https://shop.example/callback",))


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


async def test_a_confidential_client_gets_a_256_bit_secret_stored_only_as_its_digest(
    service: IdentityService[Any],
) -> None:
    client, secret = await service.register_client(MACHINE)
    assert secret is not None and len(secret) >= 43  # token_urlsafe(32): 256 bits
    stored = await service.active_client("reporting")
    assert stored is not None and stored == client
    assert stored.secret_digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(stored)
    assert stored.check_secret(secret)
    assert not stored.check_secret(secret[:-1] + ("A" if secret[-1] != "A" else "B"))
    assert not stored.check_secret("")


async def test_every_secret_is_new(service: IdentityService[Any]) -> None:
    _, first = await service.register_client(MACHINE)
    _, second = await service.register_client(
        ClientSpec("reporting-2", "Reporting job 2", public=False,
                   grant_types=MACHINE.grant_types, scopes=MACHINE.scopes))
    assert first != second


async def test_a_public_client_has_no_secret_and_keeps_its_redirect_uris(
    service: IdentityService[Any],
) -> None:
    client, secret = await service.register_client(BROWSER)
    assert secret is None and client.is_public and client.secret_digest is None
    stored = await service.active_client("shop-web")
    assert stored is not None
    assert stored.redirect_uris == ("https://shop.example/callback",)
    assert stored.grant_types == {"authorization_code", "refresh_token"}
    assert not stored.check_secret("anything")


async def test_client_ids_are_unique(service: IdentityService[Any]) -> None:
    await service.register_client(MACHINE)
    with pytest.raises(Conflict):
        await service.register_client(MACHINE)


@pytest.mark.parametrize(("changes", "path"), [
    ({"client_id": "0190a1b2-0000-7000-8000-000000000000"}, "client_id"),  # a user id's shape
    ({"client_id": "a190a1b2-0000-7000-8000-000000000000"}, "client_id"),  # one with a letter
    ({"client_id": "Upper"}, "client_id"),
    ({"client_id": "ab"}, "client_id"),
    ({"grant_types": frozenset({"password"})}, "grant_types"),
    ({"grant_types": frozenset()}, "grant_types"),
    ({"scopes": frozenset({"admin:everything"})}, "scopes"),
    ({"public": True}, "grant_types"),  # no secret: no client_credentials
    ({"grant_types": frozenset({"authorization_code"})}, "redirect_uris"),
    ({"grant_types": frozenset({"authorization_code"}),
      "redirect_uris": ("https://shop.example/cb#frag",)}, "redirect_uris"),
    ({"grant_types": frozenset({"authorization_code"}),
      "redirect_uris": ("/relative",)}, "redirect_uris"),
    ({"secret": "too-short"}, "secret"),
])
async def test_registration_refuses(
    service: IdentityService[Any], changes: dict[str, Any], path: str
) -> None:
    spec = _spec(changes)
    with pytest.raises(InvalidInput) as caught:
        await service.register_client(spec)
    assert path in [error.path[0] for error in caught.value.errors]
    assert await service.list_clients() == []


def _spec(changes: dict[str, Any]) -> ClientSpec:
    fields = {name: getattr(MACHINE, name) for name in ClientSpec.__slots__}
    return ClientSpec(**{**fields, **changes})


async def test_a_given_secret_is_for_the_seeded_demo_client(
    service: IdentityService[Any],
) -> None:
    secret = "a-demo-secret-that-is-long-enough-to-be-accepted"
    client, shown = await service.register_client(_spec({"secret": secret}))
    assert shown == secret and client.secret_digest == secret_digest(secret)


async def test_a_revoked_client_no_longer_authenticates(service: IdentityService[Any]) -> None:
    await service.register_client(MACHINE)
    assert await service.subject_exists("reporting")
    revoked = await service.revoke_client("reporting")
    assert revoked.revoked_at is not None
    assert await service.active_client("reporting") is None
    assert not await service.subject_exists("reporting")
    again = await service.revoke_client("reporting")  # twice: nothing changes
    assert again.revoked_at == revoked.revoked_at
    (listed,) = await service.list_clients()
    assert listed.client_id == "reporting" and not listed.is_active
    with pytest.raises(NotFound):
        await service.revoke_client("nobody")
    with pytest.raises(NotFound):
        await service.revoke_client("bad\x00id")


async def test_list_clients_by_id(service: IdentityService[Any]) -> None:
    await service.register_client(MACHINE)
    await service.register_client(BROWSER)
    assert [c.client_id for c in await service.list_clients()] == ["reporting", "shop-web"]
    assert all(isinstance(c, OAuthClient) for c in await service.list_clients())


async def test_unknown_and_malformed_ids_find_no_client(service: IdentityService[Any]) -> None:
    assert await service.active_client("nobody") is None
    assert await service.active_client("bad\x00id") is None
    assert not await service.subject_exists("nobody")


async def test_a_subject_is_a_user_or_an_active_client(service: IdentityService[Any]) -> None:
    ada = await service.register("ada@example.com", "long enough", "Ada")
    assert await service.subject_exists(ada.id)
    await service.register_client(MACHINE)
    assert await service.subject_exists("reporting")


async def test_admins_page_through_clients(service: IdentityService[Any]) -> None:
    admin = Principal("x", frozenset({"users:read"}), frozenset({"admin"}))
    await service.register_client(MACHINE)
    await service.register_client(BROWSER)
    first = await service.list_clients_as(admin, PageRequest(limit=1))
    assert [c.client_id for c in first.items] == ["reporting"]
    assert first.next_after == ("reporting",)
    rest = await service.list_clients_as(admin, PageRequest(limit=1, after=first.next_after))
    assert [c.client_id for c in rest.items] == ["shop-web"] and rest.next_after is None
    offset = await service.list_clients_as(admin, PageRequest(limit=5, offset=1))
    assert [c.client_id for c in offset.items] == ["shop-web"] and offset.total == 2
    with pytest.raises(InvalidInput):  # a user id is no client's cursor
        await service.list_clients_as(admin, PageRequest(after=("0190a1b2-0000-7000-8000-0",)))
    with pytest.raises(Forbidden):
        await service.list_clients_as(Principal("x", frozenset({"users:read"})), PageRequest())

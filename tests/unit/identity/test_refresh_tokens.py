"""Refresh-token use cases (the OAuth server's storage), on the fakes and the real store alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from archway.identity.domain import new_authorization_code, new_refresh_value
from archway.identity.service import IdentityService
from archway.kernel.auth.principal import Principal
from archway.kernel.db import Database
from archway.topologies.monolith import Monolith
from tests.fakes import (
    FakeAuthorizationCodes,
    FakeClients,
    FakeRefreshTokens,
    FakeUnitsOfWork,
    FakeUsers,
)

SCOPES = frozenset({"profile"})


@pytest.fixture(params=["fake", "real"])
async def service(
    request: pytest.FixtureRequest, graph: Monolith, database: Database
) -> AsyncIterator[IdentityService[Any]]:
    if request.param == "fake":
        yield IdentityService(FakeUnitsOfWork(), graph.hasher, graph.keys,
                              graph.identity._issuer, users=FakeUsers, clients=FakeClients,
                              refresh_tokens=FakeRefreshTokens, codes=FakeAuthorizationCodes)
    else:
        yield graph.identity


async def test_rotation_claims_the_used_token_and_extends_the_family(
    service: IdentityService[Any],
) -> None:
    ada = await service.register("ada@example.com", "long enough", "Ada")
    first = await service.issue_refresh_token(ada.id, "shop", SCOPES)
    used = await service.usable_refresh_token(first)
    assert used is not None and used.user_id == ada.id and used.scopes == SCOPES
    second = new_refresh_value()
    assert await service.rotate_refresh_token(used, second)
    nxt = await service.usable_refresh_token(second)
    assert nxt is not None and nxt.family_id == used.family_id and nxt.id != used.id
    assert not await service.rotate_refresh_token(used, new_refresh_value())  # claimed before
    assert await service.usable_refresh_token(second) is None  # ... so the family is revoked


async def test_a_replayed_token_revokes_its_family_only(service: IdentityService[Any]) -> None:
    ada = await service.register("ada@example.com", "long enough", "Ada")
    first = await service.issue_refresh_token(ada.id, "shop", SCOPES)
    other = await service.issue_refresh_token(ada.id, "shop", SCOPES)
    used = await service.usable_refresh_token(first)
    assert used is not None
    second = new_refresh_value()
    assert await service.rotate_refresh_token(used, second)
    assert await service.usable_refresh_token(first) is None  # a replay ...
    assert await service.usable_refresh_token(second) is None  # ... revokes the family
    assert await service.usable_refresh_token(other) is not None


async def test_deleting_a_user_revokes_their_refresh_tokens(
    service: IdentityService[Any],
) -> None:
    ada = await service.register("ada@example.com", "long enough", "Ada")
    token = await service.issue_refresh_token(ada.id, "shop", SCOPES)
    await service.delete_user(Principal(ada.id, frozenset({"profile"})), ada.id)
    assert await service.usable_refresh_token(token) is None
    assert await service.usable_refresh_token("no-such-token") is None


async def test_an_authorization_code_is_spent_once_and_a_second_use_revokes_its_family(
    service: IdentityService[Any],
) -> None:
    ada = await service.register("ada@example.com", "long enough", "Ada")
    code = new_authorization_code(
        "the-code", client_id="shop", user_id=ada.id, redirect_uri=None, scopes=SCOPES,
        code_challenge="c" * 43, code_challenge_method="S256")
    await service.save_authorization_code(code)
    assert await service.take_authorization_code("the-code", "other-client") is None
    taken = await service.take_authorization_code("the-code", "shop")
    assert taken is not None and taken.user_id == ada.id
    refresh = await service.issue_refresh_token(ada.id, "shop", SCOPES, family_id=code.family_id)
    assert await service.take_authorization_code("the-code", "shop") is None  # spent ...
    assert await service.usable_refresh_token(refresh) is None  # ... and what it got revoked
    assert await service.take_authorization_code("no-such-code", "shop") is None

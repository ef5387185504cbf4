"""Parity, identity: a user read by an admin, and one's own user, give the same data over REST,
GraphQL and gRPC (and over the gRPC client built from reflection)."""

from __future__ import annotations

import pytest

from tests.contract.conftest import Accounts, Tokens
from tests.contract.parity import PROTOCOLS, REFLECTION, over
from tests.contract.parity.neutral import ShopApi

pytestmark = pytest.mark.e2e


@over(*PROTOCOLS, REFLECTION)
async def test_a_user_reads_the_same_to_an_admin_and_to_itself(
    api: ShopApi, rest: ShopApi, tokens: Tokens, accounts: Accounts
) -> None:
    alice = await rest.me(tokens.alice)
    assert (alice["id"], alice["email"], alice["name"], alice["roles"]) == (
        accounts.alice, "alice@archway.test", "Alice Customer", ["customer"])
    assert await api.get_user(tokens.admin, accounts.alice) == alice
    assert await api.get_user(tokens.alice, accounts.alice) == alice
    assert await api.me(tokens.alice) == alice
    admin = await api.me(tokens.admin)
    assert (admin["id"], admin["roles"]) == (accounts.admin, ["admin"])

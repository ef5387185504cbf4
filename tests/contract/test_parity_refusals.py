"""Parity, refusals: one table of calls that must be refused, each refused alike over REST,
GraphQL and gRPC: the same kind of refusal (RFC 9457 status, GraphQL ``extensions.code``, gRPC
status code), the same fields named (JSON Pointer, ``extensions.fields``,
``google.rpc.BadRequest``) and, where the services word it, the same detail.

(Rate limits are in test_parity_rate_limits.py: they need a process with tiny quotas.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field

import pytest

from archway.kernel.money import MAX_AMOUNT
from tests.contract.conftest import Accounts, Tokens
from tests.contract.parity import over
from tests.contract.parity.neutral import (
    FieldPath,
    Json,
    ShopApi,
    assert_refused,
    refusal_of,
)
from tests.contract.parity.shop import draft, made_product, settled

pytestmark = pytest.mark.e2e
NO_TOKEN = "A valid access token is required."
UNKNOWN_ID = "01a253c0-0000-7000-8000-000000000000"  # a UUIDv7 nothing has


@dataclass(frozen=True)
class World:
    """What the refused calls refer to; made once, through REST."""

    rest: ShopApi  # to set a row up
    tokens: Tokens
    accounts: Accounts
    held: Json  # a product on sale, three units of it held by Alice's confirmed order
    alices_order: Json
    rejected: Json  # another order of Alice's, rejected for want of stock


@pytest.fixture(scope="module")
async def world(apis: dict[str, ShopApi], tokens: Tokens, accounts: Accounts) -> World:
    rest = apis["rest"]
    held = await made_product(rest, tokens.admin, "HELD", stock=5)
    placed = await rest.place_order(tokens.alice, [(held["id"], 3)])
    none_left = await made_product(rest, tokens.admin, "NONE", stock=0)
    refused = await rest.place_order(tokens.alice, [(none_left["id"], 1)])
    return World(
        rest, tokens, accounts, held, await settled(rest, tokens.alice, placed["id"], "confirmed"),
        await settled(rest, tokens.alice, refused["id"], "rejected"))


Call = Callable[[ShopApi, World], Awaitable[object]]


@dataclass(frozen=True)
class Row:
    name: str
    call: Call
    kind: str
    fields: tuple[FieldPath, ...] = ()
    detail: str | Callable[[World], str] | None = None
    not_in: dict[str, str] = field(default_factory=dict)  # protocol → why it cannot be asked


async def _stale_count(api: ShopApi, w: World) -> object:
    product = await made_product(w.rest, w.tokens.admin, "STALE", stock=1)
    version = await api.version_of(product["id"], w.tokens.admin)
    await api.set_stock(w.tokens.admin, product["id"], 2, version)
    return await api.set_stock(w.tokens.admin, product["id"], 3, version)  # stale by now


async def first_state(api: ShopApi, token: str | None, order_id: str) -> Json:
    """What a watch of the order reports first."""
    async with aclosing(api.watch_order(token, order_id)) as states:
        return await anext(states)


def bad_draft() -> Json:
    return {**draft("BAD"), "sku": "not a sku!", "price": {"amount": -5, "currency": "EUR"}}


ROWS = [
    # Unauthenticated: no token, or one that is not a token; decided before the body's values.
    Row("me-without-a-token", lambda api, w: api.me(None), "unauthenticated",
        detail=NO_TOKEN),
    Row("me-with-a-forged-token", lambda api, w: api.me("not-a-token"), "unauthenticated",
        detail="The token is not a signed JWT."),
    Row("order-without-a-token",
        lambda api, w: api.place_order(None, [(w.held["id"], 1)]), "unauthenticated",
        detail=NO_TOKEN),
    Row("watching-without-a-token",
        lambda api, w: first_state(api, None, w.alices_order["id"]), "unauthenticated",
        detail=NO_TOKEN),
    Row("create-without-a-token-and-invalid-values",
        lambda api, w: api.create_product(None, bad_draft()), "unauthenticated",
        detail=NO_TOKEN),
    # Forbidden: the scope, the role, another user's account.
    Row("orders-without-the-scope",
        lambda api, w: api.list_orders(w.tokens.alice_profile_only, 5), "forbidden",
        detail="This needs the 'orders:read' scope."),
    Row("stock-by-a-customer-with-the-scope",
        lambda api, w: api.set_stock(w.tokens.alice_catalog_write, w.held["id"], 9), "forbidden",
        detail="This is for administrators."),
    Row("another-users-account",
        lambda api, w: api.get_user(w.tokens.bob, w.accounts.alice), "forbidden",
        detail="You may only act on your own account."),
    # BOLA: another customer's order does not exist for Bob.
    Row("another-customers-order",
        lambda api, w: api.get_order(w.tokens.bob, w.alices_order["id"]), "not_found",
        detail="No such order."),
    Row("cancelling-another-customers-order",
        lambda api, w: api.cancel_order(w.tokens.bob, w.alices_order["id"]), "not_found",
        detail="No such order."),
    Row("watching-another-customers-order",
        lambda api, w: first_state(api, w.tokens.bob, w.alices_order["id"]), "not_found",
        detail="No such order."),
    # Not found.
    Row("unknown-product", lambda api, w: api.get_product(UNKNOWN_ID), "not_found",
        detail="No such product."),
    Row("unknown-order", lambda api, w: api.get_order(w.tokens.admin, UNKNOWN_ID), "not_found",
        detail="No such order."),
    Row("unknown-user", lambda api, w: api.get_user(w.tokens.admin, UNKNOWN_ID), "not_found",
        detail="No such user."),
    # Invalid input, with the field's path.
    Row("quantity-zero",
        lambda api, w: api.place_order(w.tokens.alice, [(w.held["id"], 0)]), "invalid",
        (("lines", 0, "quantity"),)),
    Row("negative-price",
        lambda api, w: api.create_product(w.tokens.admin, {
            **draft("NEG"), "price": {"amount": -5, "currency": "EUR"}}), "invalid",
        (("price", "amount"),)),
    Row("price-past-the-bound",
        lambda api, w: api.create_product(w.tokens.admin, {
            **draft("BIG"), "price": {"amount": MAX_AMOUNT + 1, "currency": "EUR"}}), "invalid",
        (("price", "amount"),)),
    Row("stock-below-what-orders-hold",
        lambda api, w: api.set_stock(w.tokens.admin, w.held["id"], 2), "invalid",
        (("on_hand",),), detail="cannot be below the 3 units reserved by orders"),
    Row("page-too-large", lambda api, w: api.list_products(101), "invalid", (("limit",),)),
    Row("forged-cursor", lambda api, w: api.list_products(2, "bm90LWEtY3Vyc29y"), "invalid",
        (("cursor",),), detail="is not a cursor this API returned"),
    # Conflicts with the current state.
    Row("duplicate-sku",
        lambda api, w: api.create_product(w.tokens.admin, {**draft("DUP"), "sku": w.held["sku"]}),
        "conflict", detail=lambda w: f"A product with sku '{w.held['sku']}' already exists."),
    Row("cancelling-a-rejected-order",
        lambda api, w: api.cancel_order(w.tokens.alice, w.rejected["id"]), "conflict",
        detail="A rejected order cannot be cancelled."),
    Row("stale-version", _stale_count, "precondition_failed",
        detail="The product has changed since you read it.",
        not_in={"graphql": "GraphQL's writes take no version (docs/protocols.md)"}),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
@over()
async def test_refused_alike(api: ShopApi, world: World, row: Row) -> None:
    if api.name in row.not_in:
        pytest.skip(row.not_in[api.name])
    refusal = await refusal_of(row.call(api, world))
    detail = row.detail(world) if callable(row.detail) else row.detail
    assert_refused(refusal, row.kind, *row.fields, detail=detail)

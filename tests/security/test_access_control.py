"""Broken object- and function-level authorization (OWASP API1 and API5), route by route.

BOLA: Bob, a customer whose token carries every scope a customer has, names Alice's objects.
Orders answer 404, exactly as for an id that names nothing (PRODUCT.md: others' orders are
404), so Bob cannot even learn that the order exists; a user's account and a customer's report
are 403 by contract ("self or admin", refused before anything is looked up), for Alice's id as
for an id that names no one, so that status tells nothing either. Every object route of the
OpenAPI documents must be in :data:`OBJECT_ROUTES`: a new one fails the test until its
expected refusal is written down.

BFLA: a customer's token with *every* scope, admin ones included (a token says what it may
ask, the role who asks), is a 403 on every operation for administrators, found in the documents
(the admin role, or a scope only administrators are given).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from archway.kernel.auth.principal import SCOPES
from archway.kernel.ids import new_id
from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.ordering import stocked_product
from tests.security.operations import Operation, operations

ALICE, BOB, ADMIN = "alice@archway.test", "bob@archway.test", "admin@archway.test"
CUSTOMER_SCOPES = "profile orders:read orders:write"

# Every object route (a path parameter) that is not the public catalog's, and how another
# customer is refused on it. The catalog's object writes are admin-only (BFLA, below).
OBJECT_ROUTES = {
    ("GET", "/users/{user_id}"): 403,
    ("PATCH", "/users/{user_id}"): 403,
    ("DELETE", "/users/{user_id}"): 403,
    ("GET", "/orders/{order_id}"): 404,
    ("POST", "/orders/{order_id}/cancel"): 404,
    ("GET", "/reports/customers/{customer_id}"): 403,
}
BODIES: dict[str, Any] = {"PATCH": {"name": "Mallory"}}


@pytest.fixture
async def alices_order(
    client: httpx.AsyncClient, graph: Monolith, auth_headers: AuthHeaders,
    accounts: dict[str, str],
) -> str:
    product = await stocked_product(graph, "BOLA-1", on_hand=5)
    placed = await client.post("/api/v1/orders", headers=await auth_headers(
        ALICE, CUSTOMER_SCOPES), json={"lines": [{"product_id": product, "quantity": 1}]})
    assert placed.status_code == 202, placed.text
    await graph.relays.settle()
    return str(placed.json()["id"])


def object_operations(found: list[Operation]) -> list[Operation]:
    """Object routes a customer may call on objects of their own (admin-only ones, the
    catalog's writes and the OAuth clients, are refused whatever the object: BFLA, below)."""
    return [op for op in found if "{" in op.path and not op.template.startswith("/products")
            and not op.admin_only]


async def test_every_object_route_has_its_expected_refusal(client: httpx.AsyncClient) -> None:
    declared = {(op.method, op.template) for op in object_operations(await operations(client))}
    assert declared == set(OBJECT_ROUTES)


def fill(template: str, alice_id: str, order_id: str) -> str:
    return template.format(user_id=alice_id, customer_id=alice_id, order_id=order_id)


async def test_another_customers_objects_are_refused_on_every_object_route(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str],
    alices_order: str,
) -> None:
    bob = await auth_headers(BOB, CUSTOMER_SCOPES)
    alice = await auth_headers(ALICE, CUSTOMER_SCOPES)
    nobody = new_id()
    for op in object_operations(await operations(client)):
        expected = OBJECT_ROUTES[(op.method, op.template)]
        body = BODIES.get(op.method)
        theirs = await client.request(
            op.method, fill(op.path, accounts[ALICE], alices_order), json=body, headers=bob)
        missing = await client.request(
            op.method, fill(op.path, nobody, nobody), json=body, headers=bob)
        assert theirs.status_code == missing.status_code == expected, (str(op), theirs.text)
        assert theirs.headers["content-type"] == "application/problem+json"
        # the same answer as for nothing at all: no oracle for what exists
        same = ("type", "title", "status", "detail")
        assert {k: theirs.json()[k] for k in same} == {k: missing.json()[k] for k in same}
    # and nothing of Alice's changed or went
    mine = await client.get(f"/api/v1/orders/{alices_order}", headers=alice)
    assert mine.status_code == 200 and mine.json()["status"] != "cancelled"
    me = await client.get("/api/v1/users/me", headers=alice)
    assert me.json()["name"] == "Alice Customer"


async def test_lists_show_only_the_callers_objects(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, alices_order: str,
) -> None:
    bob = await auth_headers(BOB, CUSTOMER_SCOPES)
    for version, key in ((1, "items"), (2, "data")):
        listed = await client.get(f"/api/v{version}/orders", headers=bob)
        assert listed.status_code == 200 and listed.json()[key] == []


async def test_the_owner_and_an_admin_are_still_served(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str],
    alices_order: str,
) -> None:
    """The refusals above are about the caller, not broken routes."""
    alice = await auth_headers(ALICE, CUSTOMER_SCOPES)
    admin = await auth_headers(ADMIN, " ".join(SCOPES))
    for headers in (alice, admin):
        for path in (f"/api/v2/users/{accounts[ALICE]}", f"/api/v2/orders/{alices_order}",
                     f"/api/v2/reports/customers/{accounts[ALICE]}"):
            answer = await client.get(path, headers=headers)
            assert answer.status_code == 200, (path, answer.text)


async def test_a_customer_is_403_on_every_admin_operation(
    client: httpx.AsyncClient, graph: Monolith, auth_headers: AuthHeaders,
    accounts: dict[str, str],
) -> None:
    product = await stocked_product(graph, "BFLA-1", on_hand=5)
    every_scope = await auth_headers(ALICE, " ".join(SCOPES))
    admin_operations = [op for op in await operations(client) if op.admin_only]
    templates = {(op.method, op.template) for op in admin_operations}
    assert {("GET", "/users"), ("POST", "/products"), ("PUT", "/products/{product_id}/stock"),
            ("DELETE", "/products/{product_id}"), ("POST", "/api-keys"), ("GET", "/api-keys"),
            ("GET", "/api-keys/{key_id}"), ("POST", "/api-keys/{key_id}/revoke")} <= templates
    for op in admin_operations:
        path = op.path.format(product_id=product, user_id=accounts[BOB], client_id="archway-demo",
                              key_id=new_id())
        answer = await client.request(
            op.method, path, json={} if op.has_body else None, headers=every_scope)
        assert answer.status_code == 403, (str(op), answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    shown = await client.get(f"/api/v1/products/{product}")
    assert shown.status_code == 200  # no admin operation went through
    assert (await client.get(f"/api/v1/users/{accounts[BOB]}", headers=await auth_headers(
        BOB, "profile"))).status_code == 200


async def test_the_roles_in_a_token_are_the_users_not_the_callers_wish(
    client: httpx.AsyncClient, graph: Monolith, accounts: dict[str, str],
) -> None:
    """A dev token for a customer carries the customer's roles whatever scopes it names."""
    token = await graph.identity.issue_dev_token(ALICE, list(SCOPES))
    answer = await client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403

"""Input hygiene: control characters (Unicode Cc) are refused in emails, names, passwords,
SKUs, categories and search filters; free-text descriptions take line breaks and tabs but never
NUL. Each refusal is a 422 naming the field, on SQLite and PostgreSQL alike (PostgreSQL cannot
store a NUL, which once made these 500s)."""

from __future__ import annotations

import httpx
import pytest

from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.http.test_orders_api import ADMIN, ALICE, pointers

CONTROLS = [pytest.param(char, id=f"U+{ord(char):04X}")
            for char in ("\x00", "\x01", "\t", "\n", "\x1f", "\x7f", "\x85", "\x9f")]
REGISTRATION = {"email": "dora@example.com", "password": "long enough", "name": "Dora"}
PRODUCT_V1 = {"sku": "HYG-1", "name": "Mug", "category": "kitchen", "price": "1.00",
              "currency": "EUR"}


@pytest.mark.parametrize("char", CONTROLS)
@pytest.mark.parametrize(("field", "value"), [
    ("email", "do{}ra@example.com"), ("email", "dora@example.com{}"),
    ("name", "Do{}ra"), ("password", "long {}enough"),
])
async def test_registration_refuses_control_characters(
    client: httpx.AsyncClient, char: str, field: str, value: str
) -> None:
    body = {**REGISTRATION, field: value.format(char)}
    response = await client.post("/api/v1/users", json=body)
    assert pointers(response) == [f"/{field}"]


@pytest.mark.parametrize("char", CONTROLS)
async def test_a_users_changes_refuse_control_characters(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str], char: str
) -> None:
    alice = await auth_headers(ALICE, "profile")
    response = await client.patch(
        f"/api/v2/users/{accounts[ALICE]}",
        json={"name": f"Alice{char}", "email": f"alice{char}@archway.test"}, headers=alice)
    assert sorted(pointers(response)) == ["/email", "/name"]


@pytest.mark.parametrize("char", CONTROLS)
@pytest.mark.parametrize("field", ["sku", "name", "category"])
async def test_product_text_refuses_control_characters(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, char: str, field: str
) -> None:
    admin = await auth_headers(ADMIN, "catalog:write")
    body = {**PRODUCT_V1, field: f"{PRODUCT_V1[field]}{char}x"}
    response = await client.post("/api/v1/products", json=body, headers=admin)
    assert pointers(response) == [f"/{field}"]


async def test_a_description_takes_line_breaks_and_tabs_but_not_nul(
    client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    admin = await auth_headers(ADMIN, "catalog:write")
    free_text = "Blue.\r\n\tHolds 300 ml.\x07"
    created = await client.post(
        "/api/v1/products", json={**PRODUCT_V1, "description": free_text}, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["description"] == free_text
    refused = await client.patch(
        f"/api/v1/products/{created.json()['id']}", json={"description": "a\x00b"}, headers=admin)
    assert pointers(refused) == ["/description"]


@pytest.mark.parametrize("parameter", ["q", "category"])
async def test_product_filters_refuse_control_characters(
    client: httpx.AsyncClient, parameter: str
) -> None:
    response = await client.get("/api/v1/products", params={parameter: "a\x00b"})
    assert pointers(response) == [parameter]


async def test_a_user_path_with_a_nul_is_not_found(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    admin = await auth_headers(ADMIN, "users:read users:write")
    url = f"/api/v1/users/{accounts[ALICE]}%00"
    assert (await client.get(url, headers=admin)).status_code == 404
    assert (await client.patch(url, json={"name": "X"}, headers=admin)).status_code == 404
    assert (await client.delete(url, headers=admin)).status_code == 404


async def test_names_with_letters_of_any_script_are_accepted(
    graph: Monolith, client: httpx.AsyncClient
) -> None:
    body = {**REGISTRATION, "name": "Zoë Ångström-Łukasiewicz 山田"}
    response = await client.post("/api/v1/users", json=body)
    assert response.status_code == 201, response.text

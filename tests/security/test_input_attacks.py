"""Hostile input on every route the OpenAPI documents list: mass assignment on every write
body (422 naming the field), injection strings in every query parameter and object id (never a
5xx, never SQL, a driver's name or a traceback in the answer), malformed JSON (400), bodies
that are not JSON (415), bodies over the limit (413, declared or chunked) and oversized or
numerous headers, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest

from archway.kernel.auth.principal import SCOPES
from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.ordering import stocked_product
from tests.security.operations import Operation, operations

ALICE, ADMIN = "alice@archway.test", "admin@archway.test"
MIB = 1024 * 1024


class Shop:
    """What the attacks need: ids to put in paths, a valid body per operation and its caller."""

    def __init__(self, product: str, alice: str, headers: dict[str, dict[str, str]]) -> None:
        self.product, self.alice, self.headers = product, alice, headers

    def path(self, op: Operation) -> str:
        return op.path.format(product_id=self.product, user_id=self.alice,
                              customer_id=self.alice, order_id=self.product,
                              client_id="archway-demo")

    def caller(self, op: Operation) -> dict[str, str]:
        """Who may make ``op``'s request (so the attack reaches the validation): Alice on her
        own account and orders, an admin with every scope elsewhere, nobody to register."""
        if op.method == "POST" and op.template == "/users":
            return {}
        if op.template.startswith(("/users/{", "/orders")) and op.method != "GET":
            return self.headers["alice"]
        return self.headers["admin"]

    def body(self, op: Operation) -> dict[str, Any]:
        """A body ``op`` accepts: each attack changes one thing in it."""
        price: Any = ({"amount": 1250, "currency": "EUR"} if op.version == 2 else "12.50")
        bodies: dict[tuple[str, str], dict[str, Any]] = {
            ("POST", "/users"): {"email": "eve@example.com", "password": "long enough",
                                 "name": "Eve"},
            ("PATCH", "/users/{user_id}"): {"name": "Alice Again"},
            ("POST", "/products"): {"sku": "ATK-2", "name": "Mug", "description": "Blue",
                                    "category": "kitchen", "price": price,
                                    **({"currency": "EUR"} if op.version == 1 else {})},
            ("PATCH", "/products/{product_id}"): {"name": "Renamed"},
            ("PUT", "/products/{product_id}/stock"): {"on_hand": 7},
            ("POST", "/orders"): {"lines": [{"product_id": self.product, "quantity": 1}]},
            ("POST", "/oauth-clients"): {"client_id": "attack-client", "name": "Attack",
                                         "grant_types": ["client_credentials"],
                                         "scopes": ["reports:read"]},
            ("PATCH", "/oauth-clients/{client_id}"): {"name": "Renamed"},
            ("POST", "/api-keys"): {"consumer": "Attack", "plan": "default",
                                    "scopes": ["reports:read"]},
        }
        return bodies[(op.method, op.template)]


@pytest.fixture
async def shop(
    graph: Monolith, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> AsyncIterator[Shop]:
    product = await stocked_product(graph, "ATK-1", on_hand=50)
    yield Shop(product, accounts[ALICE], {
        "alice": await auth_headers(ALICE, "profile orders:read orders:write"),
        "admin": await auth_headers(ADMIN, " ".join(SCOPES))})
    await graph.relays.settle()


async def write_operations(client: httpx.AsyncClient) -> list[Operation]:
    found = [op for op in await operations(client) if op.has_body]
    assert {op.template for op in found} >= {"/users", "/products", "/orders"}
    return found


def problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, (answer.request.method, answer.request.url, answer.text)
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    return body


# -- mass assignment -------------------------------------------------------------------------

FORBIDDEN_FIELDS = ["roles", "role", "is_admin", "id", "status", "created_at", "updated_at",
                    "reserved", "available", "version", "password_hash", "customer_id",
                    "owner", "total", "rejection_reason", "active", "on_hand"]


async def test_every_write_body_refuses_fields_it_does_not_declare(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    for op in await write_operations(client):
        declared = set(op.body_schema.get("properties", {})) if op.body_schema else set()
        for field in (f for f in FORBIDDEN_FIELDS if f not in declared):
            answer = await client.request(
                op.method, shop.path(op), json={**shop.body(op), field: "admin"},
                headers=shop.caller(op))
            errors = problem(answer, 422)["errors"]
            assert {"pointer": f"/{field}", "detail": "is not a field this resource accepts"} in (
                errors), (str(op), field, errors)


async def test_nested_objects_refuse_undeclared_fields_too(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    alice, admin = shop.headers["alice"], shop.headers["admin"]
    for version in (1, 2):
        line = {"product_id": shop.product, "quantity": 1, "unit_price": 1}
        answer = await client.post(f"/api/v{version}/orders", json={"lines": [line]},
                                   headers=alice)
        assert "/lines/0/unit_price" in [e["pointer"] for e in problem(answer, 422)["errors"]]
    answer = await client.post("/api/v2/products", headers=admin, json={
        "sku": "ATK-3", "name": "Mug", "category": "kitchen",
        "price": {"amount": 1, "currency": "EUR", "discount": 100}})
    assert "/price/discount" in [e["pointer"] for e in problem(answer, 422)["errors"]]


async def test_registration_cannot_make_an_admin(client: httpx.AsyncClient) -> None:
    for field, value in (("roles", ["admin"]), ("role", "admin"), ("is_admin", True)):
        answer = await client.post("/api/v1/users", json={
            "email": "mallory@example.com", "password": "long enough", "name": "M",
            field: value})
        problem(answer, 422)


# -- injection -------------------------------------------------------------------------------

INJECTIONS = [
    "' OR '1'='1", "1' OR 1=1--", "1; DROP TABLE identity_users;--", '" OR ""="',
    "') UNION SELECT password_hash FROM identity_users--", "1 AND SLEEP(5)", "$where",
    '{"$gt": ""}', '{"$ne": null}', "[$ne]", "../../../../etc/passwd", "..\\..\\windows",
    "%2e%2e%2f%2e%2e%2f", "%s%s%s%s%n", "{0.__class__.__mro__}", "${jndi:ldap://x/a}",
    "{{7*7}}", "<script>alert(1)</script>", "9" * 400, "-9223372036854775809",
    "18446744073709551616", "1e309", "-1e309", "NaN", "Infinity", "-0", "0x10", "1_000",
    "\u0000", "\u202e", "\ud7ff\ue000", "\U0001f4a5" * 50, "\ufb00", "a" * 5000, "", " ",
    "price,name", "-", "--price", "+price", "name;", "*",
]
RAW_QUERIES = ["%ff%fe", "%ED%A0%80", "%00", "%", "%zz", "%C0%AE%C0%AE%2F"]
"""Values as raw bytes of the query: invalid UTF-8, a lone surrogate, NUL, broken escapes."""
LEAKS = ["Traceback", 'File "/', "sqlalchemy", "sqlite3", "asyncpg", "psycopg", "[SQL:",
         "OperationalError", "ProgrammingError", "DataError", "IntegrityError", "syntax error",
         "stack", "Exception"]


def assert_no_leak(answer: httpx.Response) -> None:
    assert answer.status_code < 500, (answer.request.url, answer.text)
    text = answer.text
    for leak in LEAKS:
        assert leak not in text, (answer.request.url, leak, text[:500])
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == "application/problem+json"


async def list_operations(client: httpx.AsyncClient) -> list[Operation]:
    found = [op for op in await operations(client) if op.method == "GET" and op.query_parameters]
    names = {name for op in found for name in op.query_parameters}
    assert {"q", "category", "sort", "min_price", "max_price", "limit", "cursor"} <= names
    return found


async def test_injection_strings_in_every_query_parameter(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    for op in await list_operations(client):
        for name in op.query_parameters:
            for value in INJECTIONS:
                query = f"{name}={quote(value, safe='')}"
                assert_no_leak(await client.get(
                    f"{shop.path(op)}?{query}", headers=shop.caller(op)))
            for raw in RAW_QUERIES:
                assert_no_leak(await client.get(
                    f"{shop.path(op)}?{name}={raw}", headers=shop.caller(op)))
            # repeated, as an array, as a NoSQL operator
            for query in (f"{name}=1&{name}=2", f"{name}[]=1", f"{name}[$ne]=1"):
                assert_no_leak(await client.get(
                    f"{shop.path(op)}?{query}", headers=shop.caller(op)))


async def test_injection_strings_as_object_ids(client: httpx.AsyncClient, shop: Shop) -> None:
    objects = [op for op in await operations(client) if op.method == "GET" and "{" in op.path]
    assert objects
    for op in objects:
        for value in [*INJECTIONS[:20], "..%2F..%2Fetc%2Fpasswd", "%00", "%ff"]:
            ident = value if "%" in value else quote(value, safe="")  # no backslash is left
            path = re.sub(r"\{\w+\}", ident, op.path)
            assert_no_leak(await client.get(path, headers=shop.caller(op)))


@pytest.mark.parametrize("text", ["\\ud800", "\\udfff", "\\u0000", "a\\ud83d"])
async def test_unstorable_text_in_every_body_field_is_a_422(
    client: httpx.AsyncClient, shop: Shop, text: str
) -> None:
    """A lone surrogate or a NUL (escaped, so the JSON itself is well formed) that no database
    could store is refused with the field's name, before any store sees it."""
    for op in await write_operations(client):
        body = shop.body(op)
        for field in (name for name, value in body.items() if isinstance(value, str)):
            raw = orjson.dumps({**body, field: "TEXT"}).replace(b"TEXT", text.encode())
            answer = await client.request(op.method, shop.path(op), content=raw, headers={
                **shop.caller(op), "content-type": "application/json"})
            pointers = [e["pointer"] for e in problem(answer, 422)["errors"]]
            assert f"/{field}" in pointers, (str(op), field, answer.text)


# -- malformed bodies ------------------------------------------------------------------------

MALFORMED_JSON = [b"{", b"[1,2", b'{"a":', b"{'a': 1}", b'{"a": 1,}', b"\xff\xfe{}", b"nul",
                  b'{"a": "\\ud800"', b"[" * 100_000, b'{"a":' * 50_000]
WRONG_SHAPES = [b"null", b"[]", b'"text"', b"1", b"1e400", b"true", b'{"a": NaN}']


async def test_malformed_json_is_a_400_on_every_write(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    for op in await write_operations(client):
        for raw in MALFORMED_JSON:
            answer = await client.request(op.method, shop.path(op), content=raw, headers={
                **shop.caller(op), "content-type": "application/json"})
            problem(answer, 400)


async def test_json_of_the_wrong_shape_is_a_422_on_every_write(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    for op in await write_operations(client):
        for raw in WRONG_SHAPES:
            answer = await client.request(op.method, shop.path(op), content=raw, headers={
                **shop.caller(op), "content-type": "application/json"})
            problem(answer, 422)


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/xml", "text/html", "application/jsonx", None])
async def test_a_body_that_is_not_json_is_a_415_on_every_write(
    client: httpx.AsyncClient, shop: Shop, content_type: str | None
) -> None:
    for op in await write_operations(client):
        raw = httpx.Request("POST", "/", json=shop.body(op)).content  # valid JSON, mislabelled
        headers = {**shop.caller(op), **({"content-type": content_type} if content_type else {})}
        answer = await client.request(op.method, shop.path(op), content=raw, headers=headers)
        assert problem(answer, 415)["detail"] == "Send the request body as application/json."


async def test_json_with_a_json_media_type_is_taken(client: httpx.AsyncClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        answer = await client.post("/api/v1/users", headers={"content-type": content_type},
                                   content=b'{"email": "json@example.com", "password": '
                                           b'"long enough", "name": "J"}')
        assert answer.status_code == 201, answer.text


async def test_a_body_over_the_limit_is_a_413_on_every_write(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    oversized = b'{"name": "' + b"a" * MIB + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(oversized), 64 * 1024):
            yield oversized[start:start + 64 * 1024]

    for op in await write_operations(client):
        headers = {**shop.caller(op), "content-type": "application/json"}
        declared = await client.request(op.method, shop.path(op), content=oversized,
                                        headers=headers)
        problem(declared, 413)
        chunked = await client.request(op.method, shop.path(op), content=chunks(),
                                       headers=headers)
        assert "content-length" not in chunked.request.headers
        problem(chunked, 413)


# -- headers ---------------------------------------------------------------------------------

async def test_oversized_and_numerous_headers_are_no_5xx(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    """In process nothing bounds headers (a real server does, see tests/e2e): the app itself
    must not fail on them."""
    big = {"x-big": "a" * 256 * 1024, "x-request-id": "r" * 10_000,
           "traceparent": "00-" + "f" * 5000, "api-version": "1" * 1000,
           "if-none-match": '"x", ' * 10_000, "consistency-token": "c" * 50_000}
    many = {f"x-h{n}": "v" for n in range(2000)}
    for headers in (big, many, {"authorization": "Bearer " + "a" * 100_000}):
        for path in ("/api/v1/products", f"/api/v2/products/{shop.product}", "/api/v2/orders",
                     "/api/v1/users/me", "/healthz"):
            assert_no_leak(await client.get(path, headers=headers))

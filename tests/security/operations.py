"""The operations of the app's OpenAPI documents, so that an attack covers every route the
app serves, a route added tomorrow included."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from archway.kernel.auth.principal import SCOPES
from archway.kernel.http.guard import ACCESS_EXTENSION, API_KEY_SCHEME, SECURITY_SCHEME

ADMIN_SCOPES = frozenset(name for name, what in SCOPES.items() if "(admins)" in what)


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str  # the template: /api/v1/users/{user_id}
    spec: dict[str, Any]
    body_schema: dict[str, Any] | None  # the JSON body's schema, its $ref resolved

    @property
    def scopes(self) -> set[str]:
        return {scope for requirement in self.spec.get("security", [])
                for scope in requirement.get(SECURITY_SCHEME, [])}

    @property
    def accepts_api_key(self) -> bool:
        return any(API_KEY_SCHEME in requirement for requirement in self.spec.get("security", []))

    @property
    def admin_only(self) -> bool:
        """For administrators: the admin role, or a scope only administrators are given (a
        public operation that shows admins more, with a token optional, is not)."""
        if {} in self.spec.get("security", []):
            return False
        access = self.spec.get(ACCESS_EXTENSION, {})
        return access.get("role") == "admin" or bool(self.scopes & ADMIN_SCOPES)

    @property
    def query_parameters(self) -> list[str]:
        return [p["name"] for p in self.spec.get("parameters", []) if p["in"] == "query"]

    @property
    def has_body(self) -> bool:
        return self.body_schema is not None

    @property
    def version(self) -> int:
        return int(self.path.split("/")[2].removeprefix("v"))

    @property
    def template(self) -> str:
        """The path without its version: /users/{user_id}."""
        return "/" + self.path.split("/", 3)[3]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


async def operations(client: httpx.AsyncClient) -> list[Operation]:
    """Every operation of both versions' documents."""
    found = []
    for version in (1, 2):
        document = (await client.get(f"/openapi/v{version}.json")).json()
        found += list(_operations(document))
    assert found
    return found


def _operations(document: dict[str, Any]) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method, spec in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                body = spec.get("requestBody", {}).get("content", {}).get("application/json")
                schema = resolve(document, body["schema"]) if body else None
                yield Operation(method.upper(), path, spec, schema)


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$ref`` (``#/components/schemas/X``) followed."""
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema

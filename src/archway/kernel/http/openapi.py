"""One OpenAPI document per API version, built from the routes under its prefix."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from archway.kernel.auth.principal import SCOPES
from archway.kernel.http.guard import API_KEY_SCHEME, SECURITY_SCHEME
from archway.kernel.http.openapi_links import add_links
from archway.kernel.http.versioning import ApiVersion

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail", "instance", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["pointer", "detail"],
            "properties": {"pointer": {"type": "string"}, "detail": {"type": "string"}}}},
    },
}

DESCRIPTION = {
    ApiVersion.V1: (
        "Archway shop API, version 1 (deprecated; see the `Sunset` header). Money is a decimal "
        "string plus `currency`; lists page with `limit`/`offset`."
    ),
    ApiVersion.V2: (
        "Archway shop API, version 2. Money is `{amount, currency}` in minor units; lists page "
        "with `limit`/`cursor` and a `Link: rel=\"next\"` header."
    ),
}


def versioned_openapi(app: FastAPI, version: ApiVersion, issuer: str) -> dict[str, Any]:
    """The document of every route under the version's prefix, with just the schemas it uses."""
    document = get_openapi(
        title="Archway",
        version=f"{int(version)}.0.0",
        openapi_version="3.1.0",
        description=DESCRIPTION[version],
        routes=app.routes,
        servers=[{"url": "/"}],
    )
    document["paths"] = {
        path: item for path, item in document["paths"].items()
        if path.startswith(version.prefix + "/")
    }
    components = document.setdefault("components", {})
    _describe_problems(document["paths"])
    if "schemas" in components:
        used = _referenced_schemas(document["paths"], components["schemas"])
        components["schemas"] = {
            name: schema for name, schema in components["schemas"].items() if name in used}
    add_links(document["paths"], components.get("schemas", {}))
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "oauth2",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": f"{issuer}/oauth/authorize",
                    "tokenUrl": f"{issuer}/oauth/token",
                    "scopes": SCOPES,
                },
                "clientCredentials": {"tokenUrl": f"{issuer}/oauth/token", "scopes": SCOPES},
            },
        },
        API_KEY_SCHEME: {
            "type": "apiKey", "in": "header", "name": "X-API-Key",
            "description": "A machine consumer's key (`ak_…`), made by an admin: accepted by "
            "the operations that list this scheme, with the scopes the key was made with.",
        },
    }
    return document


def _describe_problems(paths: dict[str, Any]) -> None:
    """Errors are problem+json (RFC 9457), not FastAPI's default validation body."""
    problem = {"content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}}
    for item in paths.values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            responses["422"] = {"description": "Invalid input", **problem}
            if operation.get("security"):
                responses.setdefault("401", {"description": "Missing or invalid token", **problem})
                responses.setdefault("403", {"description": "Scope or role missing", **problem})
            responses.setdefault("default", {"description": "An error", **problem})


def _referenced_schemas(root: Any, schemas: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in seen and name in schemas:
                    seen.add(name)
                    pending.append(schemas[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return seen

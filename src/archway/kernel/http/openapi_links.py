"""OpenAPI ``links``: how the ids one answer carries open the routes of the resources they name.

Links let a client (and a stateful fuzzer) follow real ids instead of guessing them. They are
derived from the shape of the routes, so a new resource gets them without a table to keep:

- an item route ``C/{p}`` (and those under it) takes its ``p`` from the ``id`` of the answer of
  ``POST C`` (what was created), of another route of the same item, of ``GET C/<name>``
  (``/users/me``) and of the first entry of the page ``GET C`` lists;
- a route whose one path parameter is ``x_id`` takes it from the ``x_id`` field of any answer
  that carries one (``customer_id`` of an order opens that customer's report);
- a page that has a ``next_cursor`` links to the next page of the same list (``cursor``);
- a ``POST`` whose body lists ``x_id`` entries (an order's ``lines[].product_id``) takes one from
  any answer that names an ``x`` (a created, read or listed product), its other required
  integers at their minimum.
"""

from __future__ import annotations

import re
from typing import Any

_PARAMETER = re.compile(r"^\{(\w+)\}$")
_SUCCESS = re.compile(r"^2\d\d$")


def add_links(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Add ``links`` to the success responses of ``paths`` (in place)."""
    targets = [
        (path, method, operation) for path, item in paths.items()
        for method, operation in item.items() if "operationId" in operation
    ]
    for path, item in paths.items():
        for method, operation in item.items():
            for status, response in operation.get("responses", {}).items():
                if not _SUCCESS.match(status):
                    continue
                schema = _json_schema(response, schemas)
                if schema is None:
                    continue
                links = _links_of(path, method, operation, schema, schemas, targets)
                links.update(_body_links(path, method, schema, schemas, targets))
                if links:
                    response["links"] = links


def _links_of(
    path: str, method: str, operation: dict[str, Any], schema: dict[str, Any],
    schemas: dict[str, Any], targets: list[tuple[str, str, dict[str, Any]]],
) -> dict[str, Any]:
    links: dict[str, Any] = {}
    properties = schema.get("properties", {})
    if "next_cursor" in properties and any(
            parameter.get("in") == "query" and parameter.get("name") == "cursor"
            for parameter in operation.get("parameters", [])):
        links["NextPage"] = {"operationId": operation["operationId"],
                             "parameters": {"query.cursor": "$response.body#/next_cursor"}}
    for target_path, target_method, target in targets:
        if target is operation:
            continue
        parameter = _single_path_parameter(target_path)
        if parameter is None:
            continue
        source = _id_source(path, method, target_path, properties, schemas)
        if source is None and parameter in properties:
            source = f"$response.body#/{parameter}"
        if source is not None:
            links[_link_name(target_method, target_path)] = {
                "operationId": target["operationId"], "parameters": {parameter: source}}
    return links


def _id_source(
    path: str, method: str, target_path: str, properties: dict[str, Any],
    schemas: dict[str, Any],
) -> str | None:
    """Where the ``id`` of the item ``target_path`` addresses sits in this answer, if here."""
    collection = _collection_of(target_path)
    if collection is None:
        return None
    if method == "post" and path == collection and "id" in properties:
        return "$response.body#/id"
    if _collection_of(path) == collection and "id" in properties:  # one item route to another
        return "$response.body#/id"
    parent, _, name = path.rpartition("/")
    if method == "get" and parent == collection and _PARAMETER.match(name) is None \
            and "id" in properties:
        return "$response.body#/id"
    if method == "get" and path == collection:
        for field, field_schema in properties.items():
            entries = field_schema.get("items", {}) if field_schema.get("type") == "array" else {}
            entry = _resolve(entries, schemas)
            if entry is not None and "id" in entry.get("properties", {}):
                return f"$response.body#/{field}/0/id"
    return None


def _body_links(
    path: str, method: str, schema: dict[str, Any], schemas: dict[str, Any],
    targets: list[tuple[str, str, dict[str, Any]]],
) -> dict[str, Any]:
    links: dict[str, Any] = {}
    for target_path, target_method, target in targets:
        if target_method != "post" or _single_path_parameter(target_path) is not None:
            continue
        template = _entry_template(target, schemas)
        if template is None:
            continue
        listed, field, entry = template
        noun_collection = target_path.rsplit("/", 1)[0] + f"/{field.removesuffix('_id')}s"
        source = _id_source(path, method, noun_collection + "/{id}",
                            schema.get("properties", {}), schemas)
        if source is not None:
            links[_link_name(target_method, target_path)] = {
                "operationId": target["operationId"],
                "requestBody": {listed: [{**entry, field: source}]}}
    return links


def _entry_template(
    operation: dict[str, Any], schemas: dict[str, Any]
) -> tuple[str, str, dict[str, Any]] | None:
    """(list property, ``x_id`` field, the entry's other required integers at their minimum) of
    a body made of a list of entries naming one ``x`` each, if the body is one."""
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    schema = _resolve(body.get("schema", {}), schemas) or {}
    for listed, listed_schema in schema.get("properties", {}).items():
        if listed not in schema.get("required", []) or listed_schema.get("type") != "array":
            continue
        entry = _resolve(listed_schema.get("items", {}), schemas) or {}
        required = entry.get("required", [])
        fields = [name for name in required if name.endswith("_id")]
        others = {name: entry["properties"][name] for name in required if name not in fields}
        if len(fields) != 1 or any(other.get("type") != "integer" for other in others.values()):
            continue
        return listed, fields[0], {
            name: int(other.get("minimum", 1)) for name, other in others.items()}
    return None


def _collection_of(path: str) -> str | None:
    """``/api/v2/products`` for ``/api/v2/products/{product_id}`` or ``…/{product_id}/stock``."""
    segments = path.split("/")
    for index, segment in enumerate(segments):
        if _PARAMETER.match(segment):
            return "/".join(segments[:index])
    return None


def _single_path_parameter(path: str) -> str | None:
    names = [match.group(1) for segment in path.split("/") if (match := _PARAMETER.match(segment))]
    return names[0] if len(names) == 1 else None


def _link_name(method: str, path: str) -> str:
    words = [segment.strip("{}") for segment in path.split("/")[3:]]  # after /api/vN
    return method.capitalize() + "".join(word.title().replace("_", "") for word in words)


def _json_schema(response: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any] | None:
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    return _resolve(schema, schemas) if isinstance(schema, dict) else None


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any] | None:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return schemas.get(ref.rsplit("/", 1)[1])
    return schema or None

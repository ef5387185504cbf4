"""Detect backwards-incompatible changes between two OpenAPI 3.x documents.

A published API version must keep working for the clients written against it, so a
change is reported when an existing client could fail:

* a path, or an operation (method) on a path, is removed;
* a parameter (keyed by location and name) is removed, becomes required (a new
  required parameter counts), changes type or format, or loses an enum value;
* a request body becomes required, or one of its fields becomes required (a new
  required field counts), changes type or format, or loses an enum value;
* a 2xx response status is removed; a field of a 2xx response body is removed or
  changes type or format.

Type checks are directional: a response may narrow (``integer | null`` -> ``integer``)
and a request may widen (``integer`` -> ``number``, ``string(date)`` -> ``string``),
because clients still cope. Enums are checked in requests only: a response enum that
narrows is harmless and one that grows is an addition. Adding anything optional is
never breaking. Only media types present in both documents are compared.

Schemas are flattened: ``$ref`` resolves within its own document; ``allOf`` merges its
parts; ``anyOf``/``oneOf`` are read conservatively -- a property exists if any
alternative has it, is required only if every non-null alternative requires it, and
the type is the union of the alternatives' types. A recursive schema is walked once
per pair of old/new references along each path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

Document = dict[str, Any]
Node = dict[str, Any]  # an operation, parameter, request body or response object
Schema = dict[str, Any]
Direction = Literal["request", "response"]
Docs = tuple[Document, Document]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_NULL = frozenset({"null"})


def breaking_changes(old: Document, new: Document) -> list[str]:
    """Return one message per breaking change from ``old`` to ``new``, in ``old``'s order."""
    problems: list[str] = []
    for path, old_item in old.get("paths", {}).items():
        new_item = new.get("paths", {}).get(path)
        if new_item is None:
            problems.append(f"{path}: path removed")
            continue
        for method in (m for m in _METHODS if m in old_item):
            where = f"{method.upper()} {path}"
            if method not in new_item:
                problems.append(f"{where}: operation removed")
                continue
            found = _check_operation((old, new), old_item, new_item, method)
            problems.extend(f"{where}: {problem}" for problem in found)
    return problems


def _check_operation(docs: Docs, old_item: Node, new_item: Node, method: str) -> Iterator[str]:
    old_params = _parameters(docs[0], old_item, method)
    new_params = _parameters(docs[1], new_item, method)
    for key, old_param in old_params.items():
        label = "{} parameter {}".format(*key)
        new_param = new_params.get(key)
        if new_param is None:
            yield f"{label} removed"
            continue
        if new_param.get("required") and not old_param.get("required"):
            yield f"{label} became required"
        old_schema, new_schema = old_param.get("schema", {}), new_param.get("schema", {})
        yield from _compare(docs, old_schema, new_schema, "request", label)
    for key, new_param in new_params.items():
        if key not in old_params and new_param.get("required"):
            yield "{} parameter {} added as required".format(*key)

    old_op, new_op = old_item[method], new_item[method]
    old_body = _deref(docs[0], old_op.get("requestBody", {}))
    new_body = _deref(docs[1], new_op.get("requestBody", {}))
    if new_body.get("required") and not old_body.get("required"):
        yield "request body became required"
    yield from _compare_content(docs, old_body, new_body, "request", "request body")

    new_responses = new_op.get("responses", {})
    for status, old_response in old_op.get("responses", {}).items():
        if not str(status).startswith("2"):
            continue
        if status not in new_responses:
            yield f"response {status} removed"
            continue
        old_body, new_body = _deref(docs[0], old_response), _deref(docs[1], new_responses[status])
        yield from _compare_content(docs, old_body, new_body, "response", f"response {status}")


def _resolve(doc: Document, ref: str) -> Any:
    """Follow a local JSON pointer such as ``#/components/schemas/Product``."""
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _deref(doc: Document, node: Node) -> Node:
    while "$ref" in node:
        node = _resolve(doc, node["$ref"])
    return node


def _parameters(doc: Document, item: Node, method: str) -> dict[tuple[str, str], Node]:
    """Path-level parameters overridden by operation-level ones, keyed by (in, name)."""
    params = (
        _deref(doc, p) for p in (*item.get("parameters", ()), *item[method].get("parameters", ()))
    )
    return {(p["in"], p["name"]): p for p in params}


def _compare_content(
    docs: Docs, old: Node, new: Node, direction: Direction, label: str
) -> Iterator[str]:
    new_content = new.get("content", {})
    for media_type, old_media in old.get("content", {}).items():
        if media_type in new_content:
            new_schema = new_content[media_type].get("schema", {})
            yield from _compare(docs, old_media.get("schema", {}), new_schema, direction, label)


@dataclass(frozen=True)
class _Shape:
    """What a client can observe of a schema once refs and combinators are flattened."""

    types: frozenset[str] | None  # e.g. {"string(date-time)", "null"}; None: unconstrained
    enum: tuple[Any, ...] | None
    properties: dict[str, Schema]
    required: frozenset[str]
    items: Schema | None
    refs: frozenset[str]  # the $refs crossed to build this shape, for the recursion guard


def _compare(
    docs: Docs,
    old_schema: Schema,
    new_schema: Schema,
    direction: Direction,
    label: str,
    path: str = "",
    seen: frozenset[tuple[frozenset[str], frozenset[str]]] = frozenset(),
) -> Iterator[str]:
    old, new = _shape(docs[0], old_schema), _shape(docs[1], new_schema)
    if old.refs or new.refs:
        if (old.refs, new.refs) in seen:
            return
        seen = seen | {(old.refs, new.refs)}
    where = f"{label} field {path}" if path else label
    outer, inner = (old, new) if direction == "response" else (new, old)
    if not _covers(outer.types, inner.types):
        yield f"{where} type changed from {_describe(old)} to {_describe(new)}"
        return
    if direction == "request" and old.enum is not None and new.enum is not None:
        for value in old.enum:
            if value not in new.enum:
                yield f"{where} enum value {json.dumps(value)} removed"
    for name, old_property in old.properties.items():
        child = f"{path}.{name}" if path else name
        if name in new.properties:
            yield from _compare(
                docs, old_property, new.properties[name], direction, label, child, seen
            )
        elif direction == "response":
            yield f"{label} field {child} removed"
    if direction == "request":
        for name in sorted(new.required - old.required):
            yield f"{label} field {f'{path}.{name}' if path else name} became required"
    if old.items is not None and new.items is not None:
        yield from _compare(docs, old.items, new.items, direction, label, f"{path}[]", seen)


def _covers(outer: frozenset[str] | None, inner: frozenset[str] | None) -> bool:
    """Whether every value of type ``inner`` is also a value of type ``outer``."""
    if outer is None or inner is None:
        return outer is None
    return all(
        kind in outer
        or kind.split("(")[0] in outer
        or (kind.startswith("integer") and "number" in outer)
        for kind in inner
    )


def _describe(shape: _Shape) -> str:
    return "any" if shape.types is None else " | ".join(sorted(shape.types))


def _shape(doc: Document, schema: Schema, refs: frozenset[str] = frozenset()) -> _Shape:
    if "$ref" in schema:
        ref = schema["$ref"]
        if ref in refs:  # a schema that contains itself through allOf/anyOf/oneOf
            return _Shape(None, None, {}, frozenset(), None, refs)
        return _shape(doc, _resolve(doc, ref), refs | {ref})
    parts = [_own_shape(schema, refs), *(_shape(doc, s, refs) for s in schema.get("allOf", ()))]
    alternatives = [_shape(doc, s, refs) for key in ("anyOf", "oneOf") for s in schema.get(key, ())]
    if alternatives:
        parts.append(_union(alternatives))
    return _intersection(parts)


def _own_shape(schema: Schema, refs: frozenset[str]) -> _Shape:
    raw = schema.get("type")
    names = [raw] if isinstance(raw, str) else list(raw or ())
    if not names and "properties" in schema:
        names = ["object"]
    elif not names and "items" in schema:
        names = ["array"]
    if names and schema.get("nullable"):  # OpenAPI 3.0 spelling of "| null"
        names.append("null")
    fmt = schema.get("format")
    types = frozenset(f"{n}({fmt})" if fmt and n != "null" else n for n in names) or None
    enum = schema.get("enum", [schema["const"]] if "const" in schema else None)
    return _Shape(
        types,
        None if enum is None else tuple(enum),
        schema.get("properties", {}),
        frozenset(schema.get("required", ())),
        schema.get("items"),
        refs,
    )


def _intersection(parts: list[_Shape]) -> _Shape:
    """``allOf``: every part applies at once."""
    typed = [p.types for p in parts if p.types is not None]
    enums = [p.enum for p in parts if p.enum is not None]
    return _Shape(
        frozenset.intersection(*typed) if typed else None,
        tuple(v for v in enums[0] if all(v in e for e in enums[1:])) if enums else None,
        _merge_properties(parts, "allOf"),
        frozenset(name for p in parts for name in p.required),
        _merge_items(parts, "allOf"),
        frozenset(ref for p in parts for ref in p.refs),
    )


def _union(alternatives: list[_Shape]) -> _Shape:
    """``anyOf``/``oneOf``: any alternative may apply; a null alternative adds only ``null``."""
    valued = [a for a in alternatives if a.types != _NULL]
    values = [v for a in valued for v in a.enum or ()]
    open_enum = not valued or any(a.enum is None for a in valued)
    open_type = any(a.types is None for a in alternatives)
    return _Shape(
        None if open_type else frozenset(t for a in alternatives for t in a.types or ()),
        None if open_enum else tuple(v for i, v in enumerate(values) if v not in values[:i]),
        _merge_properties(alternatives, "anyOf"),
        frozenset.intersection(*(a.required for a in valued)) if valued else frozenset(),
        _merge_items(alternatives, "anyOf"),
        frozenset(ref for a in alternatives for ref in a.refs),
    )


def _combine(schemas: list[Schema], keyword: str) -> Schema:
    return schemas[0] if len(schemas) == 1 else {keyword: schemas}


def _merge_properties(shapes: list[_Shape], keyword: str) -> dict[str, Schema]:
    names = dict.fromkeys(name for shape in shapes for name in shape.properties)
    return {
        name: _combine([s.properties[name] for s in shapes if name in s.properties], keyword)
        for name in names
    }


def _merge_items(shapes: list[_Shape], keyword: str) -> Schema | None:
    items = [s.items for s in shapes if s.items is not None]
    return _combine(items, keyword) if items else None

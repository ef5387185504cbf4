"""breaking_changes: one test per rule, each with a breaking and a harmless variant."""

from copy import deepcopy
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from archway.kernel.openapi_compat import breaking_changes

OP = "GET /products"


def document(paths: dict[str, Any], schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas or {}},
    }


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def with_response(schema: dict[str, Any], schemas: dict[str, Any] | None = None) -> dict[str, Any]:
    op = {"responses": {"200": {"description": "OK", **json_content(schema)}}}
    return document({"/products": {"get": op}}, schemas)


def with_params(*params: dict[str, Any]) -> dict[str, Any]:
    return document({"/products": {"get": {"parameters": list(params), "responses": {}}}})


def query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def with_body(
    schema: dict[str, Any], required: bool = True, schemas: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = {"required": required, **json_content(schema)}
    return document({"/orders": {"post": {"requestBody": body, "responses": {}}}}, schemas)


def obj(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


INT = {"type": "integer"}
STR = {"type": "string"}


def test_identical_documents_have_no_breaking_changes() -> None:
    doc = with_response(
        {"type": "array", "items": {"$ref": "#/components/schemas/Product"}},
        {"Product": obj(("id",), id=INT, name=STR)},
    )
    assert breaking_changes(doc, deepcopy(doc)) == []
    assert breaking_changes(document({}), document({})) == []


def test_removed_path_is_breaking_and_added_path_is_not() -> None:
    both = document({"/a": {"get": {}}, "/b": {"get": {}}})
    only_a = document({"/a": {"get": {}}})
    assert breaking_changes(both, only_a) == ["/b: path removed"]
    assert breaking_changes(only_a, both) == []


def test_removed_operation_is_breaking_and_added_operation_is_not() -> None:
    get_post = document({"/a": {"get": {}, "post": {}, "summary": "not an operation"}})
    get_only = document({"/a": {"get": {}}})
    assert breaking_changes(get_post, get_only) == ["POST /a: operation removed"]
    assert breaking_changes(get_only, get_post) == []


def test_removed_parameter_is_breaking_and_added_optional_parameter_is_not() -> None:
    two = with_params(query("limit", INT), query("offset", INT))
    one = with_params(query("limit", INT))
    assert breaking_changes(two, one) == [f"{OP}: query parameter offset removed"]
    assert breaking_changes(one, two) == []


def test_parameters_are_keyed_by_location_and_name() -> None:
    in_query = with_params(query("id", INT))
    in_header = with_params({"name": "id", "in": "header", "schema": INT})
    assert breaking_changes(in_query, in_header) == [f"{OP}: query parameter id removed"]


def test_path_level_parameters_are_overridden_by_operation_level_ones() -> None:
    path_level = {"name": "id", "in": "path", "required": True, "schema": STR}
    old = document({"/p/{id}": {"parameters": [path_level], "get": {}}})
    new = document({"/p/{id}": {"get": {"parameters": [{**path_level, "schema": INT}]}}})
    assert breaking_changes(old, new) == [
        "GET /p/{id}: path parameter id type changed from string to integer"
    ]


def test_parameter_that_became_required_is_breaking() -> None:
    optional = with_params(query("q", STR))
    required = with_params(query("q", STR, required=True))
    assert breaking_changes(optional, required) == [f"{OP}: query parameter q became required"]
    assert breaking_changes(required, optional) == []


def test_new_required_parameter_is_breaking() -> None:
    new = with_params(query("tenant", STR, required=True))
    assert breaking_changes(with_params(), new) == [
        f"{OP}: query parameter tenant added as required"
    ]


def test_parameter_type_or_format_change_is_breaking_but_widening_is_not() -> None:
    as_int = with_params(query("n", INT))
    as_str = with_params(query("n", STR))
    as_number = with_params(query("n", {"type": "number"}))
    as_date = with_params(query("d", {"type": "string", "format": "date"}))
    as_datetime = with_params(query("d", {"type": "string", "format": "date-time"}))
    assert breaking_changes(as_int, as_str) == [
        f"{OP}: query parameter n type changed from integer to string"
    ]
    assert breaking_changes(as_date, as_datetime) == [
        f"{OP}: query parameter d type changed from string(date) to string(date-time)"
    ]
    assert breaking_changes(as_int, as_number) == []
    assert breaking_changes(as_number, as_int) == [
        f"{OP}: query parameter n type changed from number to integer"
    ]


def test_removed_enum_value_in_parameter_is_breaking_and_added_one_is_not() -> None:
    sorts = with_params(query("sort", {"type": "string", "enum": ["name", "price"]}))
    fewer = with_params(query("sort", {"type": "string", "enum": ["name"]}))
    assert breaking_changes(sorts, fewer) == [
        f'{OP}: query parameter sort enum value "price" removed'
    ]
    assert breaking_changes(fewer, sorts) == []


def test_request_body_field_that_became_required_is_breaking() -> None:
    schemas_old = {"Address": obj(("city",), city=STR, zip=STR)}
    schemas_new = {"Address": obj(("city", "zip"), city=STR, zip=STR)}
    body = {"$ref": "#/components/schemas/Order"}
    order = obj(("sku",), sku=STR, note=STR, address={"$ref": "#/components/schemas/Address"})
    old = with_body(body, schemas={**schemas_old, "Order": order})
    new_order = obj(("sku", "note"), sku=STR, note=STR, address=order["properties"]["address"])
    new = with_body(body, schemas={**schemas_new, "Order": new_order})
    assert breaking_changes(old, new) == [
        "POST /orders: request body field address.zip became required",
        "POST /orders: request body field note became required",
    ]
    assert breaking_changes(new, old) == []


def test_new_required_request_body_field_is_breaking_but_optional_or_removed_is_not() -> None:
    old = with_body(obj(("sku",), sku=STR))
    assert breaking_changes(old, with_body(obj(("sku", "qty"), sku=STR, qty=INT))) == [
        "POST /orders: request body field qty became required"
    ]
    assert breaking_changes(old, with_body(obj(("sku",), sku=STR, qty=INT))) == []
    assert breaking_changes(with_body(obj(("sku",), sku=STR, qty=INT)), old) == []


def test_newly_required_request_body_is_breaking() -> None:
    none = document({"/orders": {"post": {"responses": {}}}})
    optional = with_body(obj(sku=STR), required=False)
    required = with_body(obj(sku=STR), required=True)
    expected = ["POST /orders: request body became required"]
    assert breaking_changes(none, required) == expected
    assert breaking_changes(optional, required) == expected
    assert breaking_changes(none, optional) == []
    assert breaking_changes(required, optional) == []


def test_request_body_enum_value_removed_or_type_changed_is_breaking() -> None:
    old = with_body(obj(kind={"enum": ["a", "b"], "type": "string"}, qty=INT))
    new = with_body(obj(kind={"enum": ["a"], "type": "string"}, qty=STR))
    assert breaking_changes(old, new) == [
        'POST /orders: request body field kind enum value "b" removed',
        "POST /orders: request body field qty type changed from integer to string",
    ]


def test_request_body_accepting_null_is_not_breaking_but_refusing_it_is() -> None:
    strict = with_body(obj(note=STR))
    nullable = with_body(obj(note={"anyOf": [STR, {"type": "null"}]}))
    assert breaking_changes(strict, nullable) == []
    assert breaking_changes(nullable, strict) == [
        "POST /orders: request body field note type changed from null | string to string"
    ]


def test_removed_2xx_response_is_breaking_but_other_statuses_are_not() -> None:
    def responses(*statuses: str) -> dict[str, Any]:
        ops = {"responses": {s: {"description": s} for s in statuses}}
        return document({"/products": {"get": ops}})

    assert breaking_changes(responses("200", "201", "404"), responses("200", "404")) == [
        f"{OP}: response 201 removed"
    ]
    assert breaking_changes(responses("200", "404"), responses("200")) == []
    assert breaking_changes(responses("200"), responses("200", "202")) == []


def test_removed_response_field_is_breaking_and_added_field_is_not() -> None:
    old = with_response(obj(items={"type": "array", "items": obj(id=INT, price=STR)}, total=INT))
    new = with_response(obj(items={"type": "array", "items": obj(id=INT)}, total=INT, next=STR))
    assert breaking_changes(old, new) == [f"{OP}: response 200 field items[].price removed"]
    assert breaking_changes(new, old) == [f"{OP}: response 200 field next removed"]


def test_response_fields_are_followed_through_refs_and_all_of() -> None:
    old_schemas = {
        "Base": obj(id=INT),
        "Product": {"allOf": [{"$ref": "#/components/schemas/Base"}, obj(name=STR)]},
    }
    new_schemas = {
        "Base": obj(),
        "Product": {"allOf": [{"$ref": "#/components/schemas/Base"}, obj(name=STR)]},
    }
    ref = {"$ref": "#/components/schemas/Product"}
    assert breaking_changes(with_response(ref, old_schemas), with_response(ref, new_schemas)) == [
        f"{OP}: response 200 field id removed"
    ]


def test_any_of_keeps_a_field_present_in_any_alternative() -> None:
    old = with_response({"anyOf": [obj(id=INT, sku=STR), obj(id=INT, code=STR)]})
    moved = with_response({"anyOf": [obj(id=INT), obj(id=INT, sku=STR, code=STR)]})
    dropped = with_response({"oneOf": [obj(id=INT), obj(id=INT, code=STR)]})
    assert breaking_changes(old, moved) == []
    assert breaking_changes(old, dropped) == [f"{OP}: response 200 field sku removed"]


def test_response_type_or_format_change_is_breaking_but_narrowing_is_not() -> None:
    def price(schema: dict[str, Any]) -> dict[str, Any]:
        return with_response(obj(price=schema))

    nullable = price({"anyOf": [{"type": "number"}, {"type": "null"}]})
    number = price({"type": "number"})
    assert breaking_changes(number, price(STR)) == [
        f"{OP}: response 200 field price type changed from number to string"
    ]
    assert breaking_changes(price({"type": "string", "format": "date"}), price(STR)) == [
        f"{OP}: response 200 field price type changed from string(date) to string"
    ]
    assert breaking_changes(number, nullable) == [
        f"{OP}: response 200 field price type changed from number to null | number"
    ]
    assert breaking_changes(nullable, number) == []
    assert breaking_changes(number, price(INT)) == []
    assert breaking_changes(with_response(obj(x=INT)), with_response({"type": "array"})) == [
        f"{OP}: response 200 type changed from object to array"
    ]


def test_response_enum_changes_are_not_breaking() -> None:
    wide = with_response(obj(status={"type": "string", "enum": ["new", "paid", "void"]}))
    narrow = with_response(obj(status={"type": "string", "enum": ["new", "paid"]}))
    assert breaking_changes(wide, narrow) == []
    assert breaking_changes(narrow, wide) == []


def test_recursive_schemas_terminate_and_report_once() -> None:
    def category(*fields: str) -> dict[str, Any]:
        children = {"type": "array", "items": {"$ref": "#/components/schemas/Category"}}
        return {"Category": obj(**dict.fromkeys(fields, STR), children=children)}

    ref = {"$ref": "#/components/schemas/Category"}
    old = with_response(ref, category("name", "slug"))
    new = with_response(ref, category("slug"))
    assert breaking_changes(old, old) == []
    assert breaking_changes(old, new) == [f"{OP}: response 200 field name removed"]
    looping = with_response(ref, {"Category": {"allOf": [ref, obj(name=STR)]}})
    assert breaking_changes(looping, looping) == []


def test_fastapi_generated_documents() -> None:
    class ProductV1(BaseModel):
        id: int
        price: str
        note: str | None = None

    class ProductV2(BaseModel):
        id: int
        note: str | None = None

    class PageV1(BaseModel):
        items: list[ProductV1]

    class PageV2(BaseModel):
        items: list[ProductV2]

    def spec(page: type[BaseModel]) -> dict[str, Any]:
        api = FastAPI()
        api.get("/api/v1/products", response_model=page)(lambda limit=20: None)
        return api.openapi()

    v1, v2 = spec(PageV1), spec(PageV2)
    assert breaking_changes(v1, spec(PageV1)) == []
    assert breaking_changes(v1, v2) == [
        "GET /api/v1/products: response 200 field items[].price removed"
    ]
    assert breaking_changes(v2, v1) == []


def test_unconstrained_schema_counts_as_any_type() -> None:
    typed, untyped = with_response(obj(x=INT)), with_response(obj(x={}))
    assert breaking_changes(typed, untyped) == [
        f"{OP}: response 200 field x type changed from integer to any"
    ]
    assert breaking_changes(untyped, typed) == []
    assert breaking_changes(with_params(query("n", {})), with_params(query("n", INT))) == [
        f"{OP}: query parameter n type changed from any to integer"
    ]


def test_optional_enum_parameter_losing_a_value_is_breaking() -> None:
    def sort(*values: str) -> dict[str, Any]:
        ref = {"anyOf": [{"$ref": "#/components/schemas/Sort"}, {"type": "null"}]}
        doc = with_params(query("sort", ref))
        doc["components"]["schemas"]["Sort"] = {"type": "string", "enum": list(values)}
        return doc

    assert breaking_changes(sort("name", "price"), sort("name")) == [
        f'{OP}: query parameter sort enum value "price" removed'
    ]


def test_request_body_union_requires_only_what_every_alternative_requires() -> None:
    card, cash = obj(("kind", "pan"), kind=STR, pan=STR), obj(("kind",), kind=STR)
    voucher = obj(("kind", "code"), kind=STR, code=STR)
    old = with_body(obj(payment={"oneOf": [card, cash]}))
    assert breaking_changes(old, with_body(obj(payment={"oneOf": [card, cash, voucher]}))) == []
    optional = with_body(obj(payment={"anyOf": [cash, {"type": "null"}]}))
    stricter = with_body(obj(payment={"anyOf": [voucher, {"type": "null"}]}))
    assert breaking_changes(optional, stricter) == [
        "POST /orders: request body field payment.code became required"
    ]

"""Pure kernel values: money, cursors, version resolution, field paths and their rendering."""

from __future__ import annotations

import pytest

from archway.kernel.errors import BadRequest, FieldError, InvalidInput
from archway.kernel.http.problems import json_pointer, validation_field_error
from archway.kernel.http.versioning import ApiVersion, resolve, successor_path
from archway.kernel.ids import is_valid_id, new_id
from archway.kernel.money import Money, MoneyError, format_minor_units, parse_decimal_string
from archway.kernel.pagination import (
    cursor_id,
    cursor_integer,
    cursor_text,
    cursor_time,
    decode_cursor,
    encode_cursor,
)


@pytest.mark.parametrize(("text", "minor"), [
    ("19.99", 1999), ("0", 0), ("0.5", 50), ("10", 1000), ("1234567.01", 123456701)])
def test_decimal_strings_parse_exactly(text: str, minor: int) -> None:
    assert parse_decimal_string(text) == minor


@pytest.mark.parametrize("text", ["-1", "1.999", "1e3", "abc", "", "01.5", " . "])
def test_bad_decimal_strings_are_refused(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_decimal_string(text)


def test_money_formats_by_currency_exponent() -> None:
    assert format_minor_units(1999, "EUR") == "19.99"
    assert format_minor_units(5, "EUR") == "0.05"
    assert format_minor_units(1999, "JPY") == "1999"
    assert Money(250, "EUR").times(3) + Money(1, "EUR") == Money(751, "EUR")


def test_money_refuses_floats_and_mixed_currencies() -> None:
    with pytest.raises(MoneyError):
        Money(19.99, "EUR")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(1, "EUR") + Money(1, "USD")
    with pytest.raises(MoneyError):
        Money(1, "XXX")


def test_cursors_round_trip_and_refuse_forgeries() -> None:
    assert decode_cursor(encode_cursor(("Mug", "id-1")), 2) == ("Mug", "id-1")
    for bad in ("", "!!!", encode_cursor(("only-one",)), encode_cursor(([1], "x"))):
        with pytest.raises(InvalidInput):
            decode_cursor(bad, 2)


def test_ids_are_time_ordered_uuid7() -> None:
    first, second = new_id(), new_id()
    assert is_valid_id(first) and first[14] == "7" and first < second
    assert not is_valid_id("nope")


@pytest.mark.parametrize(("path", "header", "expected"), [
    ("/api/v1/products", None, (ApiVersion.V1, "/api/v1/products")),
    ("/api/v2/products", "1", (ApiVersion.V2, "/api/v2/products")),
    ("/api/products", None, (ApiVersion.V1, "/api/v1/products")),
    ("/api/products", "2", (ApiVersion.V2, "/api/v2/products")),
    ("/api/v9/products", None, (None, "/api/v9/products")),
    ("/healthz", "7", (None, "/healthz")),
])
def test_version_resolution(path: str, header: str | None, expected: tuple) -> None:
    assert resolve(path, header) == expected


@pytest.mark.parametrize("header", ["3", "v2", "", "1.0"])
def test_unknown_version_headers_are_refused(header: str) -> None:
    with pytest.raises(BadRequest):
        resolve("/api/products", header)


def test_successor_path() -> None:
    assert successor_path("/api/v1/products/x") == "/api/v2/products/x"


def test_rest_renders_a_field_path_as_a_json_pointer() -> None:
    assert json_pointer(FieldError(("lines", 0, "product_id"), "x")) == "/lines/0/product_id"
    assert json_pointer(FieldError(("price", "amount"), "x")) == "/price/amount"
    assert json_pointer(FieldError(("a/b", "c~d"), "x")) == "/a~1b/c~0d"  # RFC 6901 escapes
    assert json_pointer(FieldError((), "x")) == ""  # the whole body


def test_rest_names_a_request_parameter_as_it_is() -> None:
    assert json_pointer(FieldError(("cursor",), "x", parameter=True)) == "cursor"
    assert json_pointer(InvalidInput.parameter("min_price", "x").errors[0]) == "min_price"


def test_domain_errors_carry_paths_not_a_protocol_form() -> None:
    error = InvalidInput.field(("lines", 0, "quantity"), "must be 1 to 1000").errors[0]
    assert error == FieldError(("lines", 0, "quantity"), "must be 1 to 1000")
    assert InvalidInput.field("sku", "x").errors[0].path == ("sku",)


def test_fastapi_validation_locations_become_field_paths() -> None:
    assert validation_field_error(("body", "lines", 0, "product_id"), "x") == FieldError(
        ("lines", 0, "product_id"), "x")
    assert validation_field_error(("query", "limit"), "x") == FieldError(
        ("limit",), "x", parameter=True)
    assert json_pointer(validation_field_error(("body", "a/b"), "x")) == "/a~1b"
    assert json_pointer(validation_field_error(("query", "limit"), "x")) == "limit"


def test_cursor_keys_take_only_what_the_api_writes() -> None:
    an_id = new_id()
    assert cursor_id(an_id) == an_id
    assert cursor_integer(2**63 - 1) == 2**63 - 1
    assert cursor_text("Mug") == "Mug"
    assert cursor_time("2024-05-01T10:00:00+00:00").isoformat() == "2024-05-01T10:00:00+00:00"
    forged = [
        (cursor_id, 7), (cursor_id, "id-1"), (cursor_id, an_id.replace("-", "")),
        (cursor_integer, 2**63), (cursor_integer, -(2**63)), (cursor_integer, True),
        (cursor_integer, "1"), (cursor_text, "a\x00b"), (cursor_text, "tab\there"),
        (cursor_text, 1), (cursor_time, "9999-12-31T23:59:59-14:00"),
        (cursor_time, "0001-01-01T00:00:00+14:00"), (cursor_time, "2024-05-01"),
        (cursor_time, "2024-05-01T10:00:00+00:00\x00"), (cursor_time, 1700000000),
    ]
    for check, value in forged:
        with pytest.raises(InvalidInput):
            check(value)

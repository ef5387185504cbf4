"""What the fast lane takes as the plain case of a query; everything else goes to FastAPI."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from archway.kernel.http.fast_lane import plain_int, plain_query
from archway.kernel.http.responses import plain_page
from archway.kernel.http.versioning import ApiVersion
from archway.kernel.pagination import PageRequest, encode_cursor


def request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [],
                    "query_string": query.encode()})


@pytest.mark.parametrize(("query", "expected"), [
    ("", {}),
    ("limit=5", {"limit": "5"}),
    ("limit=5&offset=10", {"limit": "5", "offset": "10"}),
    ("limit=", {"limit": ""}),
    ("limit=5&limit=6", None),  # repeated
    ("sort=name", None),  # not allowed here
    ("limit=%35", None),  # escaped
    ("q=a+b", None),
])
def test_a_plain_query_has_only_allowed_names_once_and_nothing_escaped(
    query: str, expected: dict[str, str] | None
) -> None:
    assert plain_query(request(query), ("limit", "offset")) == expected


@pytest.mark.parametrize(("text", "expected"), [
    (None, 20), ("1", 1), ("100", 100), ("007", 7),
    ("0", None), ("101", None), ("", None), ("-1", None), ("+5", None), ("1.0", None),
    ("²", None), ("9" * 10, None),
])
def test_a_plain_int_is_ascii_digits_within_bounds(text: str | None, expected: int | None) -> None:
    assert plain_int(text, 20, 1, 100) == expected


def test_plain_pages_follow_each_versions_paging() -> None:
    assert plain_page(ApiVersion.V1, request(""), 1) == PageRequest(limit=20, offset=0)
    assert plain_page(ApiVersion.V1, request("limit=3&offset=6"), 1) == PageRequest(3, 6)
    assert plain_page(ApiVersion.V1, request("cursor=x"), 1) is None
    assert plain_page(ApiVersion.V2, request("limit=3"), 1) == PageRequest(limit=3)
    cursor = encode_cursor(("01a210bb-50dd-7098-ba5d-f5468d64fb81",))
    assert plain_page(ApiVersion.V2, request(f"cursor={cursor}"), 1) == PageRequest(
        limit=20, after=("01a210bb-50dd-7098-ba5d-f5468d64fb81",))
    assert plain_page(ApiVersion.V2, request("offset=3"), 1) is None
    assert plain_page(ApiVersion.V2, request("cursor="), 1) is None

"""URI references from request data: safe for a header, and naming what the router saw."""

from __future__ import annotations

import random
import re
from urllib.parse import unquote, unquote_to_bytes

import pytest

from archway.kernel.http.uri import path_reference, query_reference, uri_reference

SAFE = re.compile(r"^(?:[A-Za-z0-9/?\-._~!$&'()*+=:@]|%[0-9A-F]{2})*$")


@pytest.mark.parametrize(("path", "expected"), [
    ("/api/v2/products/abc-1", "/api/v2/products/abc-1"),
    ("/api/v2/products/\u20ac", "/api/v2/products/%E2%82%AC"),
    ('/x>; rel="evil', "/x%3E%3B%20rel=%22evil"),
    ("/100%", "/100%25"),
    ("/a,b;c", "/a%2Cb%3Bc"),
    ("/\x00\r\n\x7f", "/%00%0D%0A%7F"),
    ("/\udcff", "/%FF"),  # a server that decodes with surrogateescape
    ("/api/v2/products/..", "/api/v2/products/%2E%2E"),  # sent as %2e%2e: not resolved away
    ("/api/v2/./x/../y/.z/a..b", "/api/v2/%2E/x/%2E%2E/y/.z/a..b"),
])
def test_a_path_is_percent_encoded_where_needed(path: str, expected: str) -> None:
    assert path_reference(path) == expected


def test_any_path_round_trips_and_is_safe() -> None:
    rng = random.Random(9)
    alphabet = "/abc.%;,<>\"' \t\r\n\x00\x7f\u00e9\u20ac\U0001f600?#[]{}|\\^`"
    for _ in range(2000):
        path = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        encoded = path_reference(path)
        assert SAFE.match(encoded), encoded
        assert unquote(encoded) == path
        assert "." not in encoded.split("/") and ".." not in encoded.split("/")


@pytest.mark.parametrize(("query", "expected"), [
    (b"limit=20&sort=-price", "limit=20&sort=-price"),
    (b"q=%3E%3B", "q=%3E%3B"),  # escapes the client sent stay as they are
    (b"q=%zz&r=%", "q=%25zz&r=%25"),
    (b'q=">; rel="x', "q=%22%3E%3B%20rel=%22x"),
    (b"q=\xff\x00\r\n", "q=%FF%00%0D%0A"),
])
def test_a_query_keeps_its_escapes_and_encodes_the_rest(query: bytes, expected: str) -> None:
    assert query_reference(query) == expected


def test_any_query_keeps_its_bytes_and_is_safe() -> None:
    rng = random.Random(8)
    for _ in range(2000):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 30)))
        encoded = query_reference(raw)
        assert SAFE.match(encoded), encoded
        if not re.search(rb"%[0-9A-Fa-f]{2}", raw):  # no escape of its own to keep
            assert unquote_to_bytes(encoded) == raw


def test_uri_reference_joins_path_and_query() -> None:
    assert uri_reference("/a b", b"") == "/a%20b"
    assert uri_reference("/a", b"x=1 2") == "/a?x=1%202"

"""Headers built from what the client sent (the path, the query, X-Request-ID) are encoded or
replaced, so no input can break a header, add parameters to it, or turn an answer into a 5xx."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import AuthHeaders
from tests.http.raw_asgi import raw_request

# RFC 3986 characters that may stand raw in a Link target here: no '>', ';', ',', '"', space,
# control or non-ASCII character, and every '%' starts an escape.
_SAFE_TARGET = re.compile(r"^(?:[A-Za-z0-9/?\-._~!$&'()*+=:@]|%[0-9A-F]{2})*$")
_LINK = re.compile(r'^<([^>]*)>; rel="([a-z-]+)"$')

ODD_SEGMENTS = [
    "%E2%82%AC",  # € (outside Latin-1)
    "x%3E%3B%20rel%3D%22evil",  # x>; rel="evil
    "%00", "%0d%0a", "%0D%0ASet-Cookie:%20a=b", "%7F", "%FF", "%C3%28", "%ED%A0%80",
    "%25", "%2525", "..", "%2E%2E", "a%2Fb", "%3B", "%2C", "%22", "%3C%3E", "%09", "%20",
    "x" * 4000, "%E2%82%AC" * 500,
]


def _successor_target(response: httpx.Response) -> str:
    match = _LINK.match(response.headers["link"])
    assert match is not None, response.headers["link"]
    assert match.group(2) == "successor-version"
    return match.group(1)


@pytest.mark.parametrize("segment", ODD_SEGMENTS)
async def test_odd_paths_get_a_problem_and_a_safely_encoded_successor_link(
    client: httpx.AsyncClient, segment: str
) -> None:
    response = await client.get(f"/api/v1/products/{segment}")
    assert response.status_code in (404, 422), response.text[:200]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    target = _successor_target(response)
    assert target.startswith("/api/v2")  # httpx resolves "..", as browsers do
    assert _SAFE_TARGET.match(target), target


@pytest.mark.parametrize("path", [
    "/api/v1/products/../../../etc/passwd", "/api/v1/products/\x00\r\n", "/api/v1/products/\udcff",
    "/api/v1/\u20ac/..", "/api/v1/products/" + "\u20ac" * 3000,
])
async def test_odd_decoded_paths_from_any_server_get_a_problem(app: object, path: str) -> None:
    answer = await raw_request(app, "GET", path, raw_path=b"/irrelevant")
    assert answer.status == 404
    (content_type,) = answer.header(b"content-type")
    assert content_type == b"application/problem+json"
    (link,) = answer.header(b"link")
    match = _LINK.match(link.decode("latin-1"))
    assert match is not None and _SAFE_TARGET.match(match.group(1)), link


async def test_the_successor_link_keeps_the_path_as_a_uri_reference(
    client: httpx.AsyncClient,
) -> None:
    euro = await client.get("/api/v1/products/%E2%82%AC")
    assert _successor_target(euro) == "/api/v2/products/%E2%82%AC"
    evil = await client.get("/api/v1/products/x%3E%3B%20rel%3D%22evil")
    assert evil.headers["link"] == (
        '</api/v2/products/x%3E%3B%20rel=%22evil>; rel="successor-version"')
    percent = await client.get("/api/v1/products/100%25")
    assert _successor_target(percent) == "/api/v2/products/100%25"
    plain = await client.get("/api/v1/products/abc-1?limit=5&sort=name")
    assert _successor_target(plain) == "/api/v2/products/abc-1?limit=5&sort=name"


@pytest.mark.parametrize("query", [
    b"a=%3E%3B%22", b'a=">;%20rel="x', b"a=%zz", b"a=%", b"a=b c", "a=\u20ac".encode(),
    b"a=%FF", b"a=,", b"a=\xff", b"a=\x00", b"a=\r\nx",
])
async def test_the_query_in_the_successor_link_is_encoded_too(app: object, query: bytes) -> None:
    answer = await raw_request(app, "GET", "/api/v1/products", query=query)
    assert answer.status in (200, 422)
    (link,) = answer.header(b"link")
    match = _LINK.match(link.decode("latin-1"))
    assert match is not None, link
    assert match.group(1).startswith("/api/v2/products?")
    assert _SAFE_TARGET.match(match.group(1)), link


async def test_the_next_page_link_keeps_the_filters_and_is_encoded(
    client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    admin = await auth_headers("admin@archway.test", "catalog:write")
    word = 'caf\u00e9>;"'
    for sku in ("ODD-1", "ODD-2"):
        created = await client.post("/api/v2/products", headers=admin, json={
            "sku": sku, "name": f"{word} {sku}", "category": "coffee",
            "price": {"amount": 100, "currency": "EUR"}})
        assert created.status_code == 201, created.text
    response = await client.get("/api/v2/products", params={"limit": "1", "q": word})
    assert response.status_code == 200 and len(response.json()["data"]) == 1
    match = _LINK.match(response.headers["link"])
    assert match is not None and match.group(2) == "next"
    target = match.group(1)
    assert target.startswith("/api/v2/products?") and _SAFE_TARGET.match(target), target
    following = await client.get(target)
    assert following.status_code == 200
    assert [p["sku"] for p in following.json()["data"]] == ["ODD-2"]


@pytest.mark.parametrize("sent", [
    b"x" * 129, b"a b", b"a\tb", "\u00e9".encode(), b"a;b", b"", b"abc\n", b"abc\r\nx: 1",
    b"<script>", b"\xff",
])
async def test_a_bad_request_id_is_replaced_by_a_generated_one(app: object, sent: bytes) -> None:
    answer = await raw_request(app, "GET", "/healthz", headers=[(b"x-request-id", sent)])
    (request_id,) = answer.header(b"x-request-id")
    assert request_id != sent
    assert re.fullmatch(rb"[A-Za-z0-9._:\-]{1,128}", request_id)


async def test_a_good_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/products/nope", headers={"X-Request-ID": "a.b:c-1_2"})
    assert response.headers["x-request-id"] == "a.b:c-1_2"
    assert response.json()["request_id"] == "a.b:c-1_2"


async def test_a_huge_version_number_is_a_404_not_a_crash(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v" + "9" * 5000 + "/products")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_unversioned_path_keeps_its_raw_path_consistent(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/products/%E2%82%AC")
    assert response.status_code == 404
    assert response.json()["instance"] == "/api/products/\u20ac"
    assert _successor_target(response) == "/api/v2/products/%E2%82%AC"

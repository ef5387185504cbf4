"""Every answer of every path carries the security headers: the API's JSON (the fast lane's
and FastAPI's), problems, 304s, the docs pages, the landing page, ops and CORS preflights."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from archway.config import Settings
from archway.kernel.db import Database
from archway.kernel.http.docs_pages import build_docs_router
from archway.kernel.http.security_headers import source_hash
from archway.topologies.monolith import Monolith, create_app
from tests.conftest import AuthHeaders
from tests.ordering import stocked_product

ALICE = "alice@archway.test"
API_CSP = "default-src 'none'; frame-ancestors 'none'"


@pytest.fixture
async def product(graph: Monolith, accounts: dict[str, str]) -> str:
    return await stocked_product(graph, "SEC-1", on_hand=3)


def assert_secured(answer: httpx.Response) -> None:
    headers = answer.headers
    assert headers["x-content-type-options"] == "nosniff", answer.request.url
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert len(headers.get_list("content-security-policy")) == 1
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "strict-transport-security" not in headers  # plain HTTP, HSTS not configured


async def test_every_kind_of_answer_is_secured(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, product: str
) -> None:
    alice = await auth_headers(ALICE, "profile")
    first = await client.get(f"/api/v2/products/{product}")
    answers = [
        first,  # the fast lane
        await client.get(f"/api/v2/products/{product}", params={"fields": "x"}),  # FastAPI's
        await client.get(f"/api/v2/products/{product}", headers={
            "if-none-match": first.headers["etag"]}),  # 304
        await client.get("/api/v2/users/me", headers=alice),
        await client.get("/api/v2/users/me"),  # 401 problem
        await client.get("/api/v2/nowhere"),  # 404 problem
        await client.put("/api/v2/users/me"),  # 405 problem
        await client.get("/api/products", headers={"api-version": "9"}),  # 400 before routing
        await client.head(f"/api/v1/products/{product}"),
        await client.get("/healthz"), await client.get("/readyz"), await client.get("/metrics"),
        await client.get("/openapi/v2.json"), await client.get("/.well-known/jwks.json"),
        await client.get("/"), await client.get("/", headers={"accept": "text/html"}),
        await client.get("/docs"), await client.get("/docs/oauth2-redirect"),
        await client.get("/redoc"),
    ]
    assert answers[2].status_code == 304
    for answer in answers:
        assert_secured(answer)


async def test_api_answers_forbid_every_source(
    client: httpx.AsyncClient, product: str
) -> None:
    for answer in (await client.get(f"/api/v1/products/{product}"),
                   await client.get("/api/v1/users/me"), await client.get("/healthz"),
                   await client.get("/")):
        assert answer.headers["content-security-policy"] == API_CSP


@pytest.mark.parametrize("path", ["/docs", "/docs/oauth2-redirect", "/redoc"])
async def test_a_docs_page_runs_only_the_inline_scripts_it_serves(
    client: httpx.AsyncClient, path: str
) -> None:
    answer = await client.get(path)
    policy = answer.headers["content-security-policy"]
    (script_src,) = re.findall(r"script-src ([^;]*)", policy)
    served = {source_hash(body) for body in re.findall(
        r"<script>(.*?)</script>", answer.text, re.DOTALL)}
    assert set(script_src.split()) == {"'self'", *served}
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    for directive in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"):
        assert directive in policy


async def test_the_landing_page_allows_its_one_style_and_no_script(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/", headers={"accept": "text/html"})
    policy = answer.headers["content-security-policy"]
    (style,) = re.findall(r"<style>(.*?)</style>", answer.text, re.DOTALL)
    assert f"style-src 'self' {source_hash(style)}" in policy
    assert "script-src 'self';" in policy and "<script" not in answer.text


async def test_authenticated_answers_are_not_stored_but_public_products_stay_cacheable(
    client: httpx.AsyncClient, auth_headers: AuthHeaders, product: str
) -> None:
    alice = await auth_headers(ALICE, "profile")
    assert (await client.get("/api/v2/users/me", headers=alice)).headers[
        "cache-control"] == "no-store"
    # an unversioned path answered to a credentialed request (the OAuth endpoints will be)
    assert (await client.get("/healthz", headers=alice)).headers["cache-control"] == "no-store"
    assert "cache-control" not in (await client.get("/healthz")).headers
    shown = await client.get(f"/api/v2/products/{product}")
    assert shown.headers["cache-control"].startswith("public, max-age=")
    # with a token the route says so itself (an admin may see more): its word is kept
    shown = await client.get(f"/api/v2/products/{product}", headers=alice)
    assert shown.headers.get_list("cache-control") == ["private"]


async def test_hsts_goes_on_https_requests(app: FastAPI, database: Database) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        for path in ("/healthz", "/api/v1/users/me", "/docs"):
            answer = await client.get(path)
            assert answer.headers["strict-transport-security"] == (
                "max-age=63072000; includeSubDomains")


@pytest.fixture
async def hsts_client(settings: Settings, graph: Monolith) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"hsts": True}), graph=graph)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_hsts_goes_on_every_answer_when_configured(hsts_client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/api/v1/users/me", "/nowhere"):
        answer = await hsts_client.get(path)
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        assert len(answer.headers.get_list("strict-transport-security")) == 1


async def test_swagger_ui_may_call_the_token_issuer_and_nothing_else() -> None:
    """The issuer's origin need not be the one the reader opened the docs at (localhost vs
    127.0.0.1, a proxy): Swagger UI's token request must still be allowed, and only that."""
    docs = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    docs.include_router(build_docs_router(
        "Archway", [("v2", "/openapi/v2.json")], redoc_spec="/openapi/v2.json",
        client_id="archway-docs", issuer="https://login.example:8443/realm"))
    transport = httpx.ASGITransport(app=docs)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        swagger = (await client.get("/docs")).headers["content-security-policy"]
        redoc = (await client.get("/redoc")).headers["content-security-policy"]
    assert "connect-src 'self' https://login.example:8443;" in swagger
    assert "connect-src 'self';" in redoc

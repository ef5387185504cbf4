"""CORS answers only the origins on the allow-list."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from archway.config import ConfigurationError, Settings, load_settings
from archway.kernel.db import Database
from archway.kernel.http.cors import AllowListCors
from archway.topologies.monolith import Monolith, create_app


async def test_cors_allows_listed_origins_only(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"cors_allow_origins": ["https://shop.test"]}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        preflight = {"Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization, idempotency-key"}
        allowed = await client.options(
            "/api/v1/users", headers={"Origin": "https://shop.test", **preflight})
        assert allowed.headers["access-control-allow-origin"] == "https://shop.test"
        refused = await client.options(
            "/api/v1/users", headers={"Origin": "https://evil.test", **preflight})
        assert "access-control-allow-origin" not in refused.headers
        simple = await client.get("/healthz", headers={"Origin": "https://shop.test"})
        assert simple.headers["access-control-allow-origin"] == "https://shop.test"
        assert "X-Request-ID" in simple.headers["access-control-expose-headers"]


async def test_cors_lets_a_browser_send_and_read_consistency_tokens(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"cors_allow_origins": ["https://shop.test"]}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        preflight = await client.options("/api/v1/orders", headers={
            "Origin": "https://shop.test", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, consistency-token"})
        assert preflight.status_code == 200
        simple = await client.get("/healthz", headers={"Origin": "https://shop.test"})
        exposed = simple.headers["access-control-expose-headers"]
        assert "Consistency-Token" in exposed
        assert "Consistency" in exposed.replace("Consistency-Token", "")


PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}


@pytest.fixture
async def cors_client(
    settings: Settings, graph: Monolith, database: Database
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        settings.model_copy(update={"cors_allow_origins": ["https://shop.test"]}), graph=graph)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def varies_on_origin(answer: httpx.Response) -> bool:
    return "origin" in [v.strip().lower() for v in answer.headers.get("vary", "").split(",")]


async def test_an_allowed_preflight_echoes_the_origin_and_allows_no_credentials(
    cors_client: httpx.AsyncClient,
) -> None:
    answer = await cors_client.options(
        "/api/v1/users", headers={"Origin": "https://shop.test", **PREFLIGHT})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://shop.test"
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in answer.headers
    assert varies_on_origin(answer)
    assert answer.headers["x-content-type-options"] == "nosniff"  # the policies wrap CORS


@pytest.mark.parametrize(("origin", "request_headers"), [
    pytest.param("https://evil.test", PREFLIGHT, id="another-origin"),
    pytest.param("https://shop.test.evil.test", PREFLIGHT, id="a-suffixed-origin"),
    pytest.param("http://shop.test", PREFLIGHT, id="another-scheme"),
    pytest.param("null", PREFLIGHT, id="the-null-origin"),
    pytest.param("https://shop.test", {"Access-Control-Request-Method": "TRACE"}, id="a-method"),
    pytest.param("https://shop.test", {"Access-Control-Request-Method": "GET",
                                       "Access-Control-Request-Headers": "x-evil"}, id="a-header"),
])
async def test_a_refused_preflight_is_a_403_problem_without_allow_origin(
    cors_client: httpx.AsyncClient, origin: str, request_headers: dict[str, str]
) -> None:
    answer = await cors_client.options(
        "/api/v1/users", headers={"Origin": origin, **request_headers})
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"].startswith("This cross-origin request is not allowed")
    assert "access-control-allow-origin" not in answer.headers
    assert varies_on_origin(answer)


@pytest.mark.parametrize("origin", [None, "https://shop.test", "https://evil.test"])
async def test_every_answer_varies_on_origin(
    cors_client: httpx.AsyncClient, origin: str | None
) -> None:
    headers = {"Origin": origin} if origin else {}
    answer = await cors_client.get("/api/v1/products", headers=headers)
    assert answer.status_code == 200
    assert varies_on_origin(answer)
    allowed = answer.headers.get("access-control-allow-origin")
    assert allowed == ("https://shop.test" if origin == "https://shop.test" else None)
    assert "access-control-allow-credentials" not in answer.headers


async def test_without_origins_there_is_no_cors(client: httpx.AsyncClient) -> None:
    answer = await client.options(
        "/api/v1/users", headers={"Origin": "https://shop.test", **PREFLIGHT})
    assert answer.status_code == 405
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("origin", [
    "*", "https://*.shop.test", "https://shop.test/", "https://shop.test/path", "shop.test",
    "ftp://shop.test", "https://shop.test:99999x"])
def test_the_allow_list_takes_exact_origins_only(origin: str) -> None:
    with pytest.raises(ConfigurationError, match="ARCHWAY_CORS_ALLOW_ORIGINS"):
        load_settings(cors_allow_origins=[origin])


@pytest.mark.parametrize("origins", [["*"], ["https://shop.test", "*"], []])
def test_the_middleware_refuses_a_wildcard(origins: list[str]) -> None:
    with pytest.raises(ValueError, match="allow-list"):
        AllowListCors(nowhere, allow_origins=origins, allow_methods=["GET"], allow_headers=[],
                      expose_headers=[])


async def nowhere(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("never called")

"""CORS answers only the origins on the allow-list."""

from __future__ import annotations

import httpx

from archway.config import Settings
from archway.topologies.monolith import create_app


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

"""GET /: JSON for API clients (the default), HTML for browsers; demo accounts only when told."""

from __future__ import annotations

import httpx
import pytest

from archway.config import ConfigurationError, load_settings
from archway.kernel.http.landing import prefers_html

EVERY_URL = ("/api/v1/products", "/api/v2/products", "/docs", "/redoc", "/graphql",
             "/openapi/v1.json", "/openapi/v2.json", "/.well-known/jwks.json", "/healthz",
             "/readyz", "/metrics")
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def test_api_clients_get_every_url_as_json(client: httpx.AsyncClient) -> None:
    answer = await client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert "accept" in answer.headers["vary"].lower()
    body = answer.json()
    assert [link["href"] for link in body["links"]] == list(EVERY_URL)
    for link in body["links"]:  # every listed URL answers
        if link["href"] != "/readyz":  # its answer depends on the relays, not on this page
            assert (await client.get(link["href"])).status_code == 200, link


async def test_browsers_get_html_linking_the_docs(client: httpx.AsyncClient) -> None:
    answer = await client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert answer.headers["content-type"].startswith("text/html")
    for path in EVERY_URL:
        assert f'href="{path}"' in answer.text


async def test_demo_accounts_are_not_shown_unless_the_process_is_told(
    client: httpx.AsyncClient,
) -> None:
    assert "demo_accounts" not in (await client.get("/")).json()
    page = (await client.get("/", headers={"Accept": "text/html"})).text
    assert "archway-alice" not in page and "Demo accounts" not in page


async def test_the_landing_page_is_not_an_api_operation(client: httpx.AsyncClient) -> None:
    for version in ("v1", "v2"):
        assert "/" not in (await client.get(f"/openapi/{version}.json")).json()["paths"]


@pytest.mark.parametrize("accept, html", [
    (None, False), ("*/*", False), ("application/json", False), (BROWSER_ACCEPT, True),
    ("text/html", True), ("application/json, text/html;q=0.5", False),
    ("text/html;q=0", False), ("text/html;q=nonsense", False), ("TEXT/HTML", True),
])
def test_html_only_when_asked_for_first(accept: str | None, html: bool) -> None:
    assert prefers_html(accept) is html


def test_demo_accounts_cannot_be_shown_in_production() -> None:
    with pytest.raises(ConfigurationError, match="ARCHWAY_SHOW_DEMO_ACCOUNTS"):
        load_settings(environment="production", show_demo_accounts=True)

"""The docs pages need nothing but Archway: every asset they load is served here, cacheable."""

from __future__ import annotations

import re

import httpx
import pytest

from archway.kernel.http.docs_assets import ASSETS, REDOC, SWAGGER_UI

PAGES = ("/", "/docs", "/docs/oauth2-redirect", "/redoc")
BROWSER = {"Accept": "text/html"}


@pytest.mark.parametrize("page", PAGES)
async def test_no_page_references_another_host(client: httpx.AsyncClient, page: str) -> None:
    html = (await client.get(page, headers=BROWSER)).text
    assert html.lstrip().lower().startswith("<!doctype html>")
    # no absolute or protocol-relative URL
    assert not re.findall(r"(?:https?:)?//[^\s\"'<>]+", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_every_asset_a_page_loads_is_served_with_long_cache_headers(
    client: httpx.AsyncClient, page: str
) -> None:
    html = (await client.get(page)).text
    assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', html)
    assert assets
    for url in assets:
        answer = await client.get(url)
        assert answer.status_code == 200, url
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.headers["content-type"].startswith(("text/javascript", "text/css"))
        assert len(answer.content) > 10_000  # the real bundle, not a stub
        again = await client.get(url, headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304


async def test_assets_are_gzipped_for_clients_that_accept_it(client: httpx.AsyncClient) -> None:
    url = f"/docs/assets/{SWAGGER_UI}/swagger-ui-bundle.js"
    raw = await client.get(url, headers={"Accept-Encoding": "identity"})
    packed = await client.get(url, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == raw.content  # httpx decoded it
    assert int(packed.headers["content-length"]) < len(raw.content) / 2


@pytest.mark.parametrize("url", [
    f"/docs/assets/{SWAGGER_UI}/missing.js", f"/docs/assets/{SWAGGER_UI}/..%2F..%2Fdocs_pages.py",
    "/docs/assets/swagger-ui-dist-1.0.0/swagger-ui-bundle.js", f"/docs/assets/{REDOC}/.hidden",
    "/docs/assets/../docs_assets.py",
])
async def test_nothing_else_is_served_from_the_assets(client: httpx.AsyncClient, url: str) -> None:
    answer = await client.get(url)
    assert answer.status_code == 404


def test_each_vendored_package_ships_its_licence() -> None:
    for package in (SWAGGER_UI, REDOC):
        assert (ASSETS / package / "LICENSE").is_file()


@pytest.mark.parametrize("page", ["/docs", "/docs/oauth2-redirect", "/redoc"])
async def test_docs_pages_load_images_and_fonts_from_archway_only(
    client: httpx.AsyncClient, page: str
) -> None:
    policy = (await client.get(page)).headers["content-security-policy"]
    assert "img-src 'self' data: blob:" in policy and "font-src 'self' data:" in policy

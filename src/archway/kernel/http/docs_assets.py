"""The docs pages' JavaScript and CSS, served by Archway itself (vendored: see assets/README.md).

Only the files shipped under ``assets/`` are served, each read once; a URL names the vendored
package's version, so an answer never changes and may be cached for a year. Clients that accept
gzip get it (the Swagger UI bundle shrinks from 1.7 MB to about 0.5 MB).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import Response

from archway.kernel.errors import NotFound

ASSETS = Path(__file__).parent / "assets"
ASSETS_URL = "/docs/assets"
SWAGGER_UI = "swagger-ui-dist-5.35.0"
REDOC = "redoc-2.5.4"
GRAPHIQL = "graphiql-3.8.3"
REACT = "react-18.3.1"
REACT_DOM = "react-dom-18.3.1"
_PACKAGES = (SWAGGER_UI, REDOC, GRAPHIQL, REACT, REACT_DOM)
CACHE_FOREVER = "public, max-age=31536000, immutable"
_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def asset_url(package: str, name: str) -> str:
    return f"{ASSETS_URL}/{package}/{name}"


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


@cache
def _asset(package: str, name: str) -> _Asset | None:
    if package not in _PACKAGES or "/" in name or name.startswith("."):
        return None
    path = ASSETS / package / name
    if not path.is_file():
        return None
    body = path.read_bytes()
    media_type = _MEDIA_TYPES.get(path.suffix, "text/plain; charset=utf-8")  # licences
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return _Asset(body, gzip.compress(body, compresslevel=9, mtime=0), media_type, etag)


def build_docs_assets_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(ASSETS_URL + "/{package}/{name}")
    async def docs_asset(package: str, name: str, request: Request) -> Response:
        asset = await asyncio.to_thread(_asset, package, name)  # the first read compresses
        if asset is None:
            raise NotFound("No such docs asset.")
        headers = {"cache-control": CACHE_FOREVER, "etag": asset.etag, "vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", "").lower():
            headers["content-encoding"] = "gzip"
            return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)

    return router

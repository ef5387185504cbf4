"""The thin Starlette adapter in front of Authlib's OAuth 2.0 core (``identity/oauth.py``).

It turns an HTTP request into the core's :class:`~archway.identity.oauth.HttpRequest` (the form
decoded, each parameter once, under the endpoint's public URI) and the core's answer back into
a response, byte for byte what Authlib decided: RFC 6749 §5.1 tokens and §5.2 errors
(``{"error": …, "error_description": …}``, ``Cache-Control: no-store``, 401 with
``WWW-Authenticate`` for ``invalid_client``), not problem+json.

No ``from __future__ import annotations``: FastAPI resolves the routes' annotations.
"""

from collections.abc import Mapping
from urllib.parse import parse_qsl

import orjson
from authlib.oauth2.rfc6749 import InvalidRequestError
from fastapi import APIRouter, Request
from starlette.responses import Response

from archway.identity.oauth import (
    INTROSPECTION_PATH,
    METADATA_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    AuthorizationServer,
    HttpRequest,
    HttpResponse,
)
from archway.kernel.http.responses import JsonResponse

FORM = "application/x-www-form-urlencoded"


def build_oauth_router(server: AuthorizationServer) -> APIRouter:
    """``POST /oauth/token``, ``/oauth/introspect`` (RFC 7662), ``/oauth/revoke`` (RFC 7009)
    and the RFC 8414 metadata; outside the versioned API (and its
    OpenAPI documents, whose security schemes name these URLs)."""
    router = APIRouter(tags=["oauth"])

    @router.post(TOKEN_PATH, include_in_schema=False)
    async def token(request: Request) -> Response:
        form = await _form(request)
        if isinstance(form, Response):
            return form
        if not form.get("grant_type"):  # a missing parameter (§5.2), not an unknown grant
            return _invalid_request("The request is missing the 'grant_type' parameter.")
        return _response(await server.respond("token", HttpRequest(
            "POST", server.issuer + TOKEN_PATH, request.headers, form)))

    @router.post(INTROSPECTION_PATH, include_in_schema=False)
    async def introspect(request: Request) -> Response:
        return await _endpoint(server, "introspection", INTROSPECTION_PATH, request)

    @router.post(REVOCATION_PATH, include_in_schema=False)
    async def revoke(request: Request) -> Response:
        return await _endpoint(server, "revocation", REVOCATION_PATH, request)

    @router.get(METADATA_PATH, include_in_schema=False)
    async def metadata() -> Response:
        return JsonResponse(server.metadata(), headers={"cache-control": "public, max-age=60"})

    return router


async def _endpoint(
    server: AuthorizationServer, name: str, path: str, request: Request
) -> Response:
    form = await _form(request)
    if isinstance(form, Response):
        return form
    return _response(await server.respond(
        name, HttpRequest("POST", server.issuer + path, request.headers, form)))


async def _form(request: Request) -> Mapping[str, str] | Response:
    """The request's form, or the RFC 6749 §5.2 ``invalid_request`` answer: the body must be
    ``application/x-www-form-urlencoded`` UTF-8 (§4.1.3, §4.4.2) with no parameter twice
    (§3.2)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM:
        return _invalid_request(f"The request body must be {FORM}.")
    try:
        pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True,
                          strict_parsing=False, errors="strict")
    except UnicodeDecodeError:
        return _invalid_request("The request body is not UTF-8.")
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            return _invalid_request(f"The parameter '{name}' is repeated.")
        form[name] = value
    return form


def _invalid_request(description: str) -> Response:
    status, body, headers = InvalidRequestError(description)()
    return _response(HttpResponse(status, body, headers))


def _response(answer: HttpResponse) -> Response:
    content = answer.body if isinstance(answer.body, str) else orjson.dumps(answer.body)
    return Response(content, status_code=answer.status, headers=dict(answer.headers))

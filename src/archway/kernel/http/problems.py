"""RFC 9457 problem details: the one place where errors become HTTP answers.

Exception handlers for FastAPI and the raw ASGI middlewares both render through
:func:`problem_response`, so every refusal has the same shape and carries the request id.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from archway.kernel.errors import (
    AlreadyApplied,
    ArchwayError,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RateLimited,
    ServiceBusy,
    Unauthenticated,
    Unavailable,
)
from archway.kernel.http.methods import allowed_methods
from archway.kernel.http.uri import uri_reference

PROBLEM_JSON = "application/problem+json"
REQUEST_ID_KEY = "archway.request_id"

STATUS_BY_ERROR: dict[type[ArchwayError], tuple[int, str]] = {
    BadRequest: (400, "bad-request"),
    InvalidInput: (422, "invalid-input"),
    Unauthenticated: (401, "unauthenticated"),
    Forbidden: (403, "forbidden"),
    NotFound: (404, "not-found"),
    AlreadyApplied: (409, "idempotent-request-applied"),
    Unavailable: (409, "unavailable"),
    Conflict: (409, "conflict"),
    PreconditionFailed: (412, "precondition-failed"),
    PayloadTooLarge: (413, "payload-too-large"),
    RateLimited: (429, "rate-limited"),
    ServiceBusy: (503, "service-busy"),
    ArchwayError: (400, "bad-request"),
}

_TITLES_BY_STATUS = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem_type(slug: str) -> str:
    return f"/problems/{slug}"


def problem_response(
    scope: Scope,
    status: int,
    *,
    detail: str,
    title: str | None = None,
    slug: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": problem_type(slug or _slug_for_status(status)),
        "title": title or _TITLES_BY_STATUS.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": scope.get("archway.original_path") or scope.get("path", ""),
        "request_id": scope.get(REQUEST_ID_KEY, ""),
    }
    if errors:
        body["errors"] = [{"pointer": json_pointer(e), "detail": e.detail} for e in errors]
    try:
        content = orjson.dumps(body)
    except TypeError:  # a lone surrogate in the path (a server decoding with surrogateescape)
        body["instance"] = str(body["instance"]).encode("utf-8", "replace").decode()
        content = orjson.dumps(body)
    return Response(content, status, headers=headers, media_type=PROBLEM_JSON)


def _slug_for_status(status: int) -> str:
    return _TITLES_BY_STATUS.get(status, "error").lower().replace(" ", "-")


def error_response(scope: Scope, exc: ArchwayError) -> Response:
    """Map a typed error by walking its MRO: subclasses need no entry of their own."""
    status, slug = next(
        STATUS_BY_ERROR[cls] for cls in type(exc).__mro__ if cls in STATUS_BY_ERROR
    )
    headers: dict[str, str] = {}
    errors: list[FieldError] | None = None
    if isinstance(exc, Unauthenticated):
        challenge = f'{exc.scheme} realm="archway"'
        if exc.error:
            challenge += f', error="{exc.error}", error_description="{_quote(exc.detail)}"'
        headers["WWW-Authenticate"] = challenge
    elif isinstance(exc, Forbidden) and exc.scope:
        headers["WWW-Authenticate"] = (
            f'Bearer realm="archway", error="insufficient_scope", scope="{exc.scope}"'
        )
    elif isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, ServiceBusy):
        headers["Retry-After"] = "1"
    elif isinstance(exc, InvalidInput | Unavailable):
        errors = exc.errors
    elif isinstance(exc, AlreadyApplied) and exc.location:
        headers["Location"] = exc.location
    return problem_response(
        scope, status, detail=exc.detail, title=exc.title, slug=slug, errors=errors,
        headers=headers,
    )


def _quote(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")


def json_pointer(error: FieldError) -> str:
    """REST's form of a field path: an RFC 6901 JSON Pointer into the body
    (``("lines", 0, "product_id")`` → ``/lines/0/product_id``); a request parameter is named
    as it is (``cursor``)."""
    if error.parameter:
        return ".".join(str(part) for part in error.path)
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in error.path]
    return "/" + "/".join(parts) if parts else ""


def validation_field_error(loc: tuple[Any, ...], detail: str) -> FieldError:
    """FastAPI's ``("body", "lines", 0, "product_id")`` → that path into the body; a query,
    path or header parameter ``("query", "limit")`` → the parameter ``limit``."""
    if not loc:
        return FieldError((), detail)
    where, *rest = loc
    if where == "body":
        return FieldError(tuple(rest), detail)
    return FieldError((str(rest[0]) if rest else str(where),), detail, parameter=True)


def _validation_problem(request: Request, exc: RequestValidationError) -> Response:
    if _unsupported_body(request, exc):
        return problem_response(
            request.scope, 415, detail="Send the request body as application/json.")
    errors = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            return problem_response(
                request.scope, 400, detail="The request body is not valid JSON."
            )
        message = str(error.get("msg", "is invalid"))
        if error.get("type") == "extra_forbidden":
            message = "is not a field this resource accepts"
        errors.append(validation_field_error(loc, message))
    return problem_response(
        request.scope, 422, detail="The request has invalid values.", slug="invalid-input",
        title="Invalid input", errors=errors,
    )


def _trailing_slash_target(request: Request) -> str | None:
    """For ``/products/`` where ``/products`` is served: that path and the query, as a
    *relative* reference. Starlette's own redirect (turned off in ``install_problem_handlers``)
    writes an absolute URL from the client's ``Host`` header, which lets a forged ``Host`` make
    a cache or a client follow a redirect to another site."""
    path: str = request.scope["path"]
    if len(path) < 2 or not path.endswith("/"):
        return None
    stripped = path[:-1]
    if stripped.startswith("//"):  # would read as another host (a network-path reference)
        return None
    scope = {**request.scope, "path": stripped}
    if all(route.matches(scope)[0] is Match.NONE for route in request.app.routes):
        return None
    return uri_reference(stripped, request.scope.get("query_string", b""))


def _unsupported_body(request: Request, exc: RequestValidationError) -> bool:
    """A body FastAPI did not read because its media type is not JSON (``text/plain``, a
    form, XML): that is the request's form, not its values (RFC 9110 section 15.5.16). A
    request with no body at all is left to the 422 that names the missing field."""
    headers = request.headers
    if "content-length" not in headers and "transfer-encoding" not in headers:
        return False
    if headers.get("content-length") == "0":
        return False
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith(
            "+json")):
        return False
    return any(tuple(error.get("loc", ()))[:1] == ("body",) for error in exc.errors())


def install_problem_handlers(app: FastAPI) -> None:
    """The one mapping from errors to answers, on ``app``; also the trailing-slash redirect,
    which answers with a relative ``Location`` instead of Starlette's."""
    app.router.redirect_slashes = False

    async def on_archway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ArchwayError)
        return error_response(request.scope, exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return _validation_problem(request, exc)

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else "Request refused."
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            without_slash = _trailing_slash_target(request)
            if without_slash is not None:
                return Response(status_code=308, headers={"Location": without_slash})
            detail = "No resource at this path."
        elif exc.status_code == 405:  # the router names one route's methods; the path has more
            headers["Allow"] = allowed_methods(request.app.routes, request.scope)
        return problem_response(request.scope, exc.status_code, detail=detail, headers=headers)

    app.add_exception_handler(ArchwayError, on_archway_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)

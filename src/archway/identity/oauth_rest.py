"""The thin Starlette adapter in front of Authlib's OAuth 2.0 core (``identity/oauth.py``).

It turns an HTTP request into the core's :class:`~archway.identity.oauth.HttpRequest` (the form
decoded, each parameter once, under the endpoint's public URI) and the core's answer back into
a response, byte for byte what Authlib decided: RFC 6749 §5.1 tokens and §5.2 errors
(``{"error": …, "error_description": …}``, ``Cache-Control: no-store``, 401 with
``WWW-Authenticate`` for ``invalid_client``), not problem+json.

No ``from __future__ import annotations``: FastAPI resolves the routes' annotations.
"""

import hmac
import secrets
from collections.abc import Mapping
from html import escape
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
from authlib.oauth2.rfc6749 import InvalidRequestError
from fastapi import APIRouter, Request
from starlette.responses import Response

from archway.identity.oauth import (
    AUTHORIZATION_PATH,
    INTROSPECTION_PATH,
    METADATA_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
    AuthorizationServer,
    ConsentRequest,
    HttpRequest,
    HttpResponse,
)
from archway.identity.oauth_limits import TokenRequestCount, TokenRequestRefused
from archway.identity.sign_ins import RetryLater
from archway.kernel.auth.principal import SCOPES
from archway.kernel.http.caller import CALLER_KEY
from archway.kernel.http.problems import error_response
from archway.kernel.http.responses import JsonResponse
from archway.kernel.ratelimit.limiter import Decision, RateLimiter

FORM = "application/x-www-form-urlencoded"
CSRF_COOKIE = "archway_authorize_csrf"
_PAGE_FIELDS = ("email", "password", "csrf_token", "action")
WRONG = "Wrong email or password."
COUNTED_BY_ROUTE = (("POST", TOKEN_PATH),)
"""What the edge's rate limiter passes through uncounted: the token route counts itself."""


def build_oauth_router(
    server: AuthorizationServer, limiter: RateLimiter | None = None
) -> APIRouter:
    """``POST /oauth/token``, ``/oauth/introspect`` (RFC 7662), ``/oauth/revoke`` (RFC 7009)
    and the RFC 8414 metadata; outside the versioned API (and its
    OpenAPI documents, whose security schemes name these URLs). ``limiter``: the app's, which
    counts token requests here rather than at the edge (:data:`COUNTED_BY_ROUTE`)."""
    router = APIRouter(tags=["oauth"])

    @router.post(TOKEN_PATH, include_in_schema=False)
    async def token(request: Request) -> Response:
        """Counted once, by the client that authenticated or else by the caller the edge
        identified (``oauth_limits.py``)."""
        count = TokenRequestCount(limiter, request.scope.get(CALLER_KEY))
        try:
            answer = await _token(server, request, count)
        except TokenRequestRefused as refused:
            return _limited(request, refused.decision)
        decision = await count.unauthenticated()
        if decision is None:
            return answer
        if not decision.allowed:
            return _limited(request, decision)
        answer.raw_headers.extend(decision.headers)
        return answer

    @router.get(AUTHORIZATION_PATH, include_in_schema=False)
    async def authorization_page(request: Request) -> Response:
        params = _single(list(request.query_params.multi_items()))
        if params is None:
            return _page("Invalid request", "<p>A parameter is repeated.</p>", 400)
        asked = await server.authorization_request(_authorization(server, params, request))
        if not isinstance(asked, ConsentRequest):
            return _refusal(asked)
        return _login_page(server, asked, params)

    @router.post(AUTHORIZATION_PATH, include_in_schema=False)
    async def authorize(request: Request) -> Response:
        form = await _form(request)
        if isinstance(form, Response):
            return _page("Invalid request", "<p>The form could not be read.</p>", 400)
        given = request.cookies.get(CSRF_COOKIE, "")
        sent = form.get("csrf_token", "")
        if not given or not sent or not hmac.compare_digest(given.encode(), sent.encode()):
            return _page("Sign-in expired", "<p>This sign-in form is not the one this browser "
                         "was given. Go back to the application and start again.</p>", 403)
        params = {k: v for k, v in form.items() if k not in _PAGE_FIELDS}
        oauth_request = _authorization(server, params, request)
        asked = await server.authorization_request(oauth_request)
        if not isinstance(asked, ConsentRequest):
            return _refusal(asked)
        if form.get("action") == "deny":
            return _response(await server.authorize(oauth_request, None))
        user = await server.service.sign_in(
            form.get("email", ""), form.get("password", ""),
            address=request.client.host if request.client else None)
        if isinstance(user, RetryLater):
            page = _login_page(server, asked, params, error=(
                f"{WRONG} Too many failed sign-ins: try again in {user.seconds} seconds."),
                status=429)
            page.headers["retry-after"] = str(user.seconds)
            return page
        if user is None:
            return _login_page(server, asked, params, error=WRONG)
        return _response(await server.authorize(oauth_request, user))

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


async def _token(
    server: AuthorizationServer, request: Request, count: TokenRequestCount
) -> Response:
    form = await _form(request)
    if isinstance(form, Response):
        return form
    if not form.get("grant_type"):  # a missing parameter (§5.2), not an unknown grant
        return _invalid_request("The request is missing the 'grant_type' parameter.")
    return _response(await server.respond("token", HttpRequest(
        "POST", server.issuer + TOKEN_PATH, request.headers, form,
        authenticated=count.authenticated)))


def _limited(request: Request, decision: Decision) -> Response:
    """The rate limiter's 429 problem, as the edge answers it, with its headers."""
    response = error_response(request.scope, decision.refusal())
    response.raw_headers.extend(decision.headers)
    return response


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


# The login and consent page --------------------------------------------------------------

def _single(pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            return None
        params[name] = value
    return params


def _authorization(
    server: AuthorizationServer, params: Mapping[str, str], request: Request
) -> HttpRequest:
    uri = server.issuer + AUTHORIZATION_PATH + ("?" + urlencode(params) if params else "")
    return HttpRequest(request.method, uri, request.headers, params)


def _refusal(answer: HttpResponse) -> Response:
    """A redirect back to the client (its error and state) as Authlib made it; a refusal that
    must not redirect as a page that says why."""
    if answer.status == 302:
        return _response(answer)
    body = answer.body if isinstance(answer.body, Mapping) else {}
    detail = str(body.get("error_description") or body.get("error") or "Invalid request.")
    return _page("Invalid request", f"<p>{escape(detail)}</p>", 400)


def _login_page(
    server: AuthorizationServer, asked: ConsentRequest, params: Mapping[str, str],
    *, error: str | None = None, status: int = 401,
) -> Response:
    """Sign in and consent in one form: who asks, for which scopes; the user signs in to
    allow, or denies. CSRF: a fresh random token in a SameSite=Strict, HttpOnly cookie and in
    the form, compared in constant time on POST."""
    token = secrets.token_urlsafe(32)
    hidden = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
        for k, v in params.items())
    scopes = "".join(
        f"<li><code>{escape(s)}</code>: {escape(SCOPES.get(s, s))}</li>"
        for s in sorted(asked.scopes))
    alert = f'<p role="alert">{escape(error)}</p>' if error else ""
    body = (
        f"<p><strong>{escape(asked.client.name)}</strong> (<code>"
        f"{escape(asked.client.client_id)}</code>) asks to act for you with:</p>"
        f"<ul>{scopes}</ul>{alert}"
        f'<form method="post" action="{AUTHORIZATION_PATH}">{hidden}'
        f'<input type="hidden" name="csrf_token" value="{token}">'
        '<p><label>Email <input name="email" type="email" autocomplete="username" required>'
        "</label></p>"
        '<p><label>Password <input name="password" type="password" '
        'autocomplete="current-password" required></label></p>'
        '<p><button name="action" value="allow" type="submit">Sign in and allow</button> '
        '<button name="action" value="deny" type="submit" formnovalidate>Deny</button></p>'
        "</form>")
    redirect = urlsplit(asked.redirect_uri)
    response = _page("Sign in to Archway", body, status if error else 200,
                     form_action=f"'self' {redirect.scheme}://{redirect.netloc}")
    response.set_cookie(
        CSRF_COOKIE, token, max_age=600, path=AUTHORIZATION_PATH, httponly=True,
        samesite="strict", secure=server.issuer.startswith("https://"))
    return response


def _page(title: str, body: str, status: int, *, form_action: str = "'none'") -> Response:
    html = ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}"
            "</body></html>")
    # Strict: nothing loads, nothing frames it, and the form may go only here and (the
    # redirect after it) to the client's redirect URI.
    csp = (f"default-src 'none'; form-action {form_action}; frame-ancestors 'none'; "
           "base-uri 'none'")
    return Response(html, status_code=status, media_type="text/html; charset=utf-8", headers={
        "content-security-policy": csp, "cache-control": "no-store"})

"""Route guards: authentication and scopes, decided before body parsing and preconditions.

A route declares what it needs once, with ``**requires("catalog:write")``; that declaration is
both its OpenAPI ``security`` requirement and what the guard enforces, so docs and checks cannot
drift. The guard runs before FastAPI reads the body, so a write without a token is a 401 even
when its body is invalid.

Every refusal for the caller is decided here, before any validation: the scopes, the admin role
of admin-only routes (``requires(..., admin=True)``), and whose resource a path names
(``requires(..., owner=Owner("user_id", ...))``): another user's ``PATCH /users/{id}`` is a
403 whatever its body. Those two rules are stated in the OpenAPI document as the operation's
``x-archway-access`` and enforced from there, like ``security``. Services check the same rules
again (other adapters call them too). A token whose user no longer exists is a 401.

An API key (``X-API-Key``, see :mod:`archway.kernel.auth.api_keys`) is accepted only by the
routes that declare it (``requires(..., api_key=True)``: the ``ApiKey`` scheme as a second
security requirement); elsewhere a valid key is a 403. When a request carries both an
``Authorization`` header and a key, the header wins and the key is not read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Protocol

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Scope

from archway.kernel.auth.api_keys import API_KEY_HEADER, ApiKeyVerifier
from archway.kernel.auth.principal import Principal
from archway.kernel.auth.tokens import TokenVerifier, bearer_token
from archway.kernel.errors import ArchwayError, Forbidden, Unauthenticated

PRINCIPAL_KEY = "archway.principal"
_ADMITTED_KEY = "archway.admitted"  # (route, principal): its guard's decision, taken early
SECURITY_SCHEME = "OAuth2"
API_KEY_SCHEME = "ApiKey"
ACCESS_EXTENSION = "x-archway-access"


@dataclass(frozen=True, slots=True)
class Owner:
    """A route on one user's resource: the path parameter naming the user, the scope the user
    acts with, and the scope an admin needs to act on anyone's."""

    parameter: str
    own_scope: str
    admin_scope: str


class Authenticator(Protocol):
    async def authenticate(self, request: HTTPConnection) -> Principal | None:
        """The caller's principal, ``None`` without credentials; raises on bad credentials."""
        ...


def requires(
    *scopes: str, admin: bool = False, owner: Owner | None = None, api_key: bool = False
) -> dict[str, Any]:
    """Route keyword arguments that demand a token carrying every one of ``scopes``, and, when
    asked, the admin role or to be the ``owner`` (else an admin with its admin scope). With
    ``api_key`` an API key carrying the scopes is accepted too (a machine consumer's route:
    neither ``admin`` nor ``owner`` fits one)."""
    if api_key and (admin or owner is not None):
        raise ValueError("an API key is no user: it cannot be an admin or a resource's owner")
    security: list[dict[str, list[str]]] = [{SECURITY_SCHEME: list(scopes)}]
    if api_key:
        security.append({API_KEY_SCHEME: []})
    extra: dict[str, Any] = {"security": security}
    access: dict[str, Any] = {}
    if admin:
        access["role"] = "admin"
    if owner is not None:
        access["self_or_admin"] = {
            "parameter": owner.parameter, "own_scope": owner.own_scope,
            "admin_scope": owner.admin_scope}
    if access:
        extra[ACCESS_EXTENSION] = access
    return {"openapi_extra": extra}


@dataclass(frozen=True, slots=True)
class _Policy:
    """A guarded route's rule: a token optional or not, its scopes, and the caller check."""

    optional: bool
    scopes: tuple[str, ...]
    check: Callable[[Principal, Request], None] | None
    api_key: bool = False

    @classmethod
    def of(cls, openapi_extra: dict[str, Any]) -> _Policy | None:
        security = openapi_extra.get("security")
        if not security:
            return None
        access = openapi_extra.get(ACCESS_EXTENSION)
        return cls(
            optional={} in security,
            scopes=tuple(scope for requirement in security
                         for scope in requirement.get(SECURITY_SCHEME, [])),
            check=_access_check(access) if access else None,
            api_key=any(API_KEY_SCHEME in requirement for requirement in security))


def _access_check(access: dict[str, Any]) -> Callable[[Principal, Request], None]:
    """The caller checks of :func:`requires`' ``admin`` and ``owner``."""
    admin_only = access.get("role") == "admin"
    owner = access.get("self_or_admin")

    def check(principal: Principal, request: Request) -> None:
        if admin_only and not principal.is_admin:
            raise Forbidden("This is for administrators.")
        if owner is not None:
            principal.acts_on_self_or_admin(
                str(request.path_params.get(owner["parameter"], "")), owner["admin_scope"],
                own_scope=owner["own_scope"])

    return check


def accepts_token(*scopes: str) -> dict[str, Any]:
    """Route keyword arguments for a public route that shows more to some callers.

    A token is optional (OpenAPI's empty security requirement); when one is sent it must be
    valid, and the route reads the caller with :func:`optional_principal`."""
    return {"openapi_extra": {"security": [{}, {SECURITY_SCHEME: list(scopes)}]}}


def guarded_route_class(authenticator: Authenticator) -> type[APIRoute]:
    class GuardedRoute(APIRoute):
        guard: ClassVar[Authenticator] = authenticator

        @cached_property
        def _policy(self) -> _Policy | None:
            """What :func:`requires` (or :func:`accepts_token`) declared, read once per route."""
            return _Policy.of(self.openapi_extra or {})

        async def admit(self, request: Request) -> Principal | None:
            """This route's guard: the caller it admits (``None``: anonymous, where allowed);
            raises :class:`Unauthenticated` or :class:`Forbidden` for a caller it refuses."""
            early: tuple[APIRoute, Principal | None] | None = request.scope.get(_ADMITTED_KEY)
            if early is not None and early[0] is self:
                return early[1]
            policy = self._policy
            if policy is None:
                return None
            principal = await authenticator.authenticate(request)
            if principal is None and not policy.optional:
                raise Unauthenticated()
            if principal is not None and not policy.optional:
                if principal.is_api_key and not policy.api_key:
                    raise Forbidden("This route does not accept API keys: it needs an access "
                                    "token.")
                for scope in policy.scopes:
                    principal.require_scope(scope)
                if policy.check is not None:
                    policy.check(principal, request)
            return principal

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            if self._policy is None:
                return handler

            async def guarded(request: Request) -> Response:
                request.scope[PRINCIPAL_KEY] = await self.admit(request)
                return await handler(request)

            return guarded

    return GuardedRoute


async def admit_early(route: BaseRoute | None, scope: Scope) -> Principal | None:
    """Run ``route``'s guard before the route runs, for a middleware that must refuse the
    caller first (an ``Idempotency-Key`` replay must not answer a caller the route would
    refuse). Raises the guard's refusal; the route then takes this decision as its own."""
    admit = getattr(route, "admit", None)
    if route is None or admit is None:
        return None
    _, matched = route.matches(scope)
    # The guard may read path parameters (an owner check): give it the scope routing will make.
    principal: Principal | None = await admit(Request({**scope, **matched}))
    scope[_ADMITTED_KEY] = (route, principal)
    return principal


async def admitted(
    route_class: type[APIRoute], request: Request, *scopes: str
) -> Principal | None:
    """For fast handlers (:mod:`archway.kernel.http.fast_lane`): the caller when its token is
    valid and carries every one of ``scopes``; ``None`` otherwise, including for any error,
    which the guarded route then reports."""
    authenticator: Authenticator | None = getattr(route_class, "guard", None)
    if authenticator is None:
        return None
    try:
        principal = await authenticator.authenticate(request)
    except ArchwayError:  # a bad token: the route says why
        return None
    if principal is None or not all(scope in principal.scopes for scope in scopes):
        return None
    return principal


async def current_principal(request: Request) -> Principal:
    """Dependency for guarded routes: the principal the guard admitted.

    Every dependency in Archway is ``async def``: FastAPI runs a plain ``def`` dependency on a
    worker thread, a thread switch per request for what is a dictionary lookup."""
    principal: Principal | None = request.scope.get(PRINCIPAL_KEY)
    if principal is None:  # a route used it without declaring requires(...)
        raise Unauthenticated()
    return principal


async def optional_principal(request: Request) -> Principal | None:
    """Dependency for :func:`accepts_token` routes: the caller, or ``None`` when anonymous."""
    return request.scope.get(PRINCIPAL_KEY)


class BearerAuthenticator:
    """Authenticates ``Authorization: Bearer`` JWT access tokens (RFC 6750, RFC 9068), and
    ``X-API-Key`` keys when given ``api_keys`` (an ``Authorization`` header wins over a key).

    ``user_exists`` is asked about every valid token's subject: a token outlives its user, and
    a deleted user must not act any more (identity answers from a short-lived cache, which its
    own deletions drop at once)."""

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        user_exists: Callable[[str], Awaitable[bool]] | None = None,
        api_keys: ApiKeyVerifier | None = None,
    ) -> None:
        self._verifier = verifier
        self._user_exists = user_exists
        self._api_keys = api_keys

    async def authenticate(self, request: HTTPConnection) -> Principal | None:
        authorization = request.headers.get("authorization")
        key = request.headers.get(API_KEY_HEADER)
        if authorization is None and key is not None and self._api_keys is not None:
            holder = await self._api_keys(key)
            if holder is None:
                raise Unauthenticated("The API key is unknown or revoked.",
                                      error="invalid_token", scheme=API_KEY_SCHEME)
            return holder.principal
        return await self.authenticate_header(authorization)

    async def authenticate_header(self, authorization: str | None) -> Principal | None:
        """The caller an ``Authorization`` value names (GraphQL's websockets may send it in
        their first message instead of a header)."""
        token = bearer_token(authorization)
        if token is None:
            return None
        principal = await self._verifier.verify(token)
        if self._user_exists is not None and not await self._user_exists(principal.subject):
            raise Unauthenticated("The token's user no longer exists.", error="invalid_token")
        return principal

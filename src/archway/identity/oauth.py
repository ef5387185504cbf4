"""The OAuth 2.0 authorization server: Authlib's framework-independent core, configured for
Archway. No web framework here; ``oauth_rest.py`` is the thin Starlette adapter in front.

Authlib's grants, client authentication and error responses are used as they are; what Archway
supplies is what Authlib leaves to its integrations: the client and token models
(``oauth_tokens.py``), the grants' and endpoints' storage hooks (``oauth_grants.py``), and here
the server itself: the token generator (the project's one RFC 9068 ES256 issuer, through the
identity service), the storage of issued tokens and the request type.

Authlib's core is synchronous and calls its storage hooks (``query_client``, the token
generator, later the code and refresh-token lookups) in the middle of its own grant logic,
while Archway's units of work are async. So :meth:`AuthorizationServer.respond` runs the core
in a worker thread (``anyio.to_thread``) and each hook hops back to the event loop for its
async call (``anyio.from_thread.run``): the loop is never blocked, the grant logic stays the
library's, and the storage stays the service's. See docs/architecture.md (Decisions).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio.to_thread
from authlib.oauth2 import AuthorizationServer as _AuthlibServer
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    UnsupportedTokenTypeError,
)

from archway.identity.domain import MACHINE_SCOPES, OAuthClient, User, new_refresh_value
from archway.identity.oauth_grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    IntrospectionEndpoint,
    RefreshTokenGrant,
    RevocationEndpoint,
    S256CodeChallenge,
)
from archway.identity.oauth_tokens import (
    CONFIDENTIAL_AUTH_METHODS,
    AccessToken,
    AnyToken,
    Client,
    StoredCode,
    StoredRefreshToken,
    on_loop,
)
from archway.identity.revoked_tokens import Denylist
from archway.identity.service import IdentityService
from archway.kernel.auth.principal import SCOPES
from archway.kernel.auth.tokens import TokenVerifier
from archway.kernel.errors import Unauthenticated

AUTHORIZATION_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
INTROSPECTION_PATH = "/oauth/introspect"
REVOCATION_PATH = "/oauth/revoke"
METADATA_PATH = "/.well-known/oauth-authorization-server"
JWKS_PATH = "/.well-known/jwks.json"


@dataclass(frozen=True)
class HttpRequest:
    """What the adapter hands the core: the request's public URI (the issuer's, so that a TLS
    proxy in front does not make it look like plain http), its headers (a case-insensitive
    mapping) and its decoded form, each parameter once. ``authenticated``, if given, is awaited
    on the event loop once a token request's client has authenticated, with its id and
    Authlib's method (``client_secret_basic``, ``client_secret_post``, ``none``), before any
    token is made; what it raises ends the request (``oauth_limits.py``)."""

    method: str
    uri: str
    headers: Mapping[str, str]
    form: Mapping[str, str]
    authenticated: Callable[[str, str], Coroutine[Any, Any, None]] | None = None


@dataclass(frozen=True)
class ConsentRequest:
    """A valid authorization request: who asks, for what, and where the answer goes."""

    client: OAuthClient
    scopes: frozenset[str]
    redirect_uri: str


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: Mapping[str, Any] | str
    headers: Sequence[tuple[str, str]]


class _FormPayload(OAuth2Payload):  # type: ignore[misc]  # Any base
    def __init__(self, form: Mapping[str, str]) -> None:
        self._form = dict(form)

    @property
    def data(self) -> dict[str, str]:
        return self._form

    @property
    def datalist(self) -> dict[str, list[str]]:
        return {key: [value] for key, value in self._form.items()}


class _FormRequest(OAuth2Request):  # type: ignore[misc]  # Any base
    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request.method, request.uri, headers=request.headers)
        self.payload = _FormPayload(request.form)
        self._form = dict(request.form)
        self.on_authenticated = request.authenticated

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


class AuthorizationServer(_AuthlibServer):  # type: ignore[misc]  # Any base
    """Authlib's server with Archway's storage; call :meth:`respond` from async code."""

    def __init__(
        self, service: IdentityService[Any], verifier: TokenVerifier, *, issuer: str,
        denylist: Denylist[Any] | None = None,
    ) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.service = service
        self.denylist = denylist
        self._verifier = verifier
        self.issuer = issuer
        self.register_token_generator("default", self._generate_token)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(RefreshTokenGrant)
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
        self.register_endpoint(IntrospectionEndpoint)
        self.register_endpoint(RevocationEndpoint)

    async def respond(self, endpoint: str, request: HttpRequest) -> HttpResponse:
        """Run Authlib's ``endpoint`` (``"token"``, ``"introspection"``, ``"revocation"``) on
        ``request`` in a worker thread."""
        work: Callable[[_FormRequest], HttpResponse] = {
            "token": self.create_token_response,
            "introspection": lambda r: self.create_endpoint_response("introspection", r),
            "revocation": lambda r: self.create_endpoint_response("revocation", r),
        }[endpoint]

        def run() -> HttpResponse:
            try:
                oauth_request = _FormRequest(request)
            except OAuth2Error as error:  # plain http off loopback (InsecureTransportError)
                result: HttpResponse = self.handle_error_response(None, error)
                return result
            answer: HttpResponse = work(oauth_request)
            return answer

        return await anyio.to_thread.run_sync(run)

    async def authorization_request(self, request: HttpRequest) -> ConsentRequest | HttpResponse:
        """What an authorization request (RFC 6749 §4.1.1) asks, as Authlib validated it
        (client, exact redirect URI, response type, scope, PKCE), for the login and consent
        page; or the answer to a request that is refused: a redirect back to the client with
        the error and ``state`` when its redirect URI is the client's, else a 400 that never
        redirects (an unknown client, a redirect URI it did not register)."""

        def run() -> ConsentRequest | HttpResponse:
            try:
                grant = self.get_consent_grant(_FormRequest(request), end_user=None)
            except OAuth2Error as error:
                answer: HttpResponse = self.handle_error_response(None, error)
                return answer
            client: OAuthClient = grant.client.client
            return ConsentRequest(client, frozenset(grant.request.scope.split()),
                                  grant.redirect_uri)

        return await anyio.to_thread.run_sync(run)

    async def authorize(self, request: HttpRequest, user: User | None) -> HttpResponse:
        """The answer to an authorization request the user approved (``user``) or denied
        (``None``): a redirect to the client with a new code, or ``access_denied``; and
        ``state`` either way."""

        def run() -> HttpResponse:
            try:
                oauth_request = _FormRequest(request)
                grant = self.get_consent_grant(oauth_request, end_user=user)
            except OAuth2Error as error:
                refused: HttpResponse = self.handle_error_response(None, error)
                return refused
            answer: HttpResponse = self.create_authorization_response(
                oauth_request, grant_user=user, grant=grant)
            return answer

        return await anyio.to_thread.run_sync(run)

    def metadata(self) -> dict[str, object]:
        """RFC 8414: what this server serves."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + AUTHORIZATION_PATH,
            "token_endpoint": self.issuer + TOKEN_PATH,
            "jwks_uri": self.issuer + JWKS_PATH,
            "grant_types_supported": sorted(
                grant.GRANT_TYPE for grant, _ in self._token_grants),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [*CONFIDENTIAL_AUTH_METHODS, "none"],
            "introspection_endpoint": self.issuer + INTROSPECTION_PATH,
            "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
            "revocation_endpoint": self.issuer + REVOCATION_PATH,
            "revocation_endpoint_auth_methods_supported": [*CONFIDENTIAL_AUTH_METHODS, "none"],
            "scopes_supported": list(SCOPES),
        }

    def any_token(self, value: str, hint: str | None) -> AnyToken | None:
        """An access or refresh token, looked up as ``hint`` says first, then as the other
        (RFC 7009 §2.1, RFC 7662 §2.1: a hint never narrows the search)."""
        lookups = [self.verified, self.usable_refresh_token]
        if hint == "refresh_token":
            lookups.reverse()
        for lookup in lookups:
            token = lookup(value)
            if token is not None:
                return token
        return None

    def verified(self, token: str) -> AccessToken | None:
        """``token`` as an access token this server issued that is valid now and whose
        subject is still someone, else ``None`` (called from the worker thread)."""
        return on_loop(self._verified, token)

    async def _verified(self, token: str) -> AccessToken | None:
        try:
            principal = await self._verifier.verify(token)
        except Unauthenticated:
            return None
        if not await self.service.subject_exists(principal.subject):
            return None
        return AccessToken(principal)

    # Authlib's hooks: called by its core, in the worker thread ----------------------------

    def create_oauth2_request(self, request: _FormRequest) -> _FormRequest:
        return request  # built by respond(), where an insecure URI can still be answered

    def handle_response(
        self, status: int, body: Mapping[str, Any] | str, headers: Sequence[tuple[str, str]]
    ) -> HttpResponse:
        return HttpResponse(status, body, headers)

    def handle_error_response(self, request: object, error: OAuth2Error) -> HttpResponse:
        if isinstance(error, UnsupportedTokenTypeError):
            # Authlib makes it a 401; RFC 7009 §2.2.1 and RFC 7662 §2.3 answer with RFC 6749
            # §5.2 errors, all 400 but invalid_client. (Not a client authentication failure:
            # no WWW-Authenticate either.)
            error.status_code = 400
        answer: HttpResponse = super().handle_error_response(request, error)
        return answer

    def send_signal(self, name: str, *args: object, **kwargs: Any) -> None:
        """Authlib's signals: a token request's client authenticated (told to the request's
        ``authenticated``); the others (a token revoked) nobody listens to."""
        if name != "after_authenticate_client":
            return
        request: _FormRequest = kwargs["grant"].request
        if request.on_authenticated is not None:
            on_loop(request.on_authenticated, kwargs["client"].get_client_id(),
                    request.auth_method)

    def query_client(self, client_id: str) -> Client | None:
        client = on_loop(self.service.active_client, client_id)
        return None if client is None else Client(client)

    def save_token(self, token: Mapping[str, Any], request: OAuth2Request) -> None:
        """Access tokens are self-contained JWTs (RFC 9068) and are not stored. A refresh
        token is stored as its digest: the next of its family when it replaces a used one
        (which is claimed in the same unit of work; if another use claimed it first, both are
        a replay and the family is revoked), a new family's first otherwise."""
        value = token.get("refresh_token")
        if value is None:
            return
        used: StoredRefreshToken | None = request.refresh_token
        if used is not None:
            if not on_loop(self.service.rotate_refresh_token, used.token, value):
                raise InvalidGrantError("The refresh token was already used.")
            return
        code: StoredCode | None = request.authorization_code
        if code is None:
            raise RuntimeError("a refresh token from neither a code nor a refresh token")
        on_loop(partial(
            self.service.issue_refresh_token, code.code.user_id, code.code.client_id,
            code.code.scopes, family_id=code.code.family_id, value=value))

    def usable_refresh_token(self, value: str) -> StoredRefreshToken | None:
        token = on_loop(self.service.usable_refresh_token, value)
        return None if token is None else StoredRefreshToken(token)

    def _generate_token(
        self,
        grant_type: str,
        client: Client,
        user: object = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, object]:
        if grant_type in ("refresh_token", "authorization_code"):
            assert isinstance(user, User) and scope is not None  # the grant checked both
            scopes = sorted(set(scope.split()))  # the code's, or at most the refresh token's
            issued = on_loop(self.service.issue_user_token, user, client.client.client_id,
                              scopes)
            return {
                "access_token": issued.token, "token_type": "Bearer",
                "expires_in": issued.expires_in, "scope": " ".join(scopes),
                **({"refresh_token": new_refresh_value()} if include_refresh_token else {}),
            }
        if grant_type != "client_credentials":
            raise RuntimeError(f"no token generator for {grant_type}")
        # A token the client gets for itself acts for no user: only machine scopes.
        granted = set((client.get_allowed_scope(scope) or "").split()) & MACHINE_SCOPES
        if not granted:
            raise InvalidScopeError("The client may not have any of the requested scopes.")
        issued = on_loop(self.service.issue_client_token, client.client, sorted(granted))
        return {
            "access_token": issued.token, "token_type": "Bearer",
            "expires_in": issued.expires_in, "scope": " ".join(sorted(granted)),
        }



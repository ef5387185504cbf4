"""The OAuth 2.0 authorization server: Authlib's framework-independent core, configured for
Archway. No web framework here; ``oauth_rest.py`` is the thin Starlette adapter in front.

Authlib's grants, client authentication and error responses are used as they are; what this
module supplies is what Authlib leaves to its integrations: the client model over
:class:`~archway.identity.domain.OAuthClient`, the token generator (the project's one RFC 9068
ES256 issuer, through the identity service) and the request type.

Authlib's core is synchronous and calls its storage hooks (``query_client``, the token
generator, later the code and refresh-token lookups) in the middle of its own grant logic,
while Archway's units of work are async. So :meth:`AuthorizationServer.respond` runs the core
in a worker thread (``anyio.to_thread``) and each hook hops back to the event loop for its
async call (``anyio.from_thread.run``): the loop is never blocked, the grant logic stays the
library's, and the storage stays the service's. See docs/architecture.md (Decisions).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import anyio.from_thread
import anyio.to_thread
from authlib.oauth2 import AuthorizationServer as _AuthlibServer
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
    UnsupportedTokenTypeError,
    grants,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant as _AuthorizationCodeGrant
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint

from archway.identity.domain import (
    MACHINE_SCOPES,
    AuthorizationCode,
    OAuthClient,
    RefreshToken,
    User,
    new_authorization_code,
    new_refresh_value,
)
from archway.identity.service import IdentityService
from archway.kernel.auth.principal import SCOPES, Principal
from archway.kernel.auth.tokens import TokenVerifier
from archway.kernel.errors import Unauthenticated

T = TypeVar("T")

AUTHORIZATION_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
INTROSPECTION_PATH = "/oauth/introspect"
REVOCATION_PATH = "/oauth/revoke"
METADATA_PATH = "/.well-known/oauth-authorization-server"
JWKS_PATH = "/.well-known/jwks.json"
CONFIDENTIAL_AUTH_METHODS = ("client_secret_basic", "client_secret_post")


class Client(ClientMixin):  # type: ignore[misc]  # Authlib ships no types: its mixin is Any
    """Authlib's view of a registered client."""

    def __init__(self, client: OAuthClient) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.client.redirect_uris[0] if self.client.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """What of ``scope`` the client may have (all it may have when it names none); ``None``
        when that is nothing, which Authlib's authorization endpoint answers ``invalid_scope``
        (rather than a code for no scope at all)."""
        allowed = self.client.scopes if not scope else set(scope.split()) & self.client.scopes
        return " ".join(sorted(allowed)) or None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris  # exactly, never by prefix

    def check_client_secret(self, client_secret: str) -> bool:
        return self.client.check_secret(client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.client.is_public:
            return method == "none"
        return method in CONFIDENTIAL_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.client.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.client.grant_types


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]  # Any base
    """RFC 6749 §4.4 as Authlib implements it, with both secret methods allowed."""

    # Authlib reads this class attribute and never changes it:
    TOKEN_ENDPOINT_AUTH_METHODS = list(CONFIDENTIAL_AUTH_METHODS)  # noqa: RUF012


class AccessToken(TokenMixin):  # type: ignore[misc]  # Any base
    """Authlib's view of a verified access token (by the kernel's verifier, as the API's
    guard verifies it, whose subject is still someone)."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def check_client(self, client: Client) -> bool:
        return bool(self.principal.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return " ".join(sorted(self.principal.scopes))

    def get_expires_in(self) -> int:
        return max(0, self.principal.expires_at - int(time.time()))

    def is_expired(self) -> bool:
        return self.principal.expires_at <= time.time()

    def is_revoked(self) -> bool:
        return False  # verified just now, and its subject still exists


class IntrospectionEndpoint(_IntrospectionEndpoint):  # type: ignore[misc]  # Any base
    """RFC 7662 as Authlib implements it. A client may introspect the tokens issued to it; any
    other token, like an unknown, expired or forged one, is ``{"active": false}``."""

    CLIENT_AUTH_METHODS = list(CONFIDENTIAL_AUTH_METHODS)  # noqa: RUF012  # read, never changed

    def query_token(self, token_string: str, token_type_hint: str | None) -> AnyToken | None:
        server: AuthorizationServer = self.server
        return server.any_token(token_string, token_type_hint)

    def check_permission(self, token: AnyToken, client: Client, request: object) -> bool:
        return bool(token.check_client(client))

    def introspect_token(self, token: AnyToken) -> dict[str, object]:
        server: AuthorizationServer = self.server
        if isinstance(token, StoredRefreshToken):
            return {
                "active": True, "token_type": "refresh_token", "scope": token.get_scope(),
                "client_id": token.token.client_id, "sub": token.token.user_id,
                "iss": server.issuer, "exp": int(token.token.expires_at.timestamp()),
            }
        principal = token.principal
        return {
            "active": True, "token_type": "Bearer", "scope": token.get_scope(),
            "client_id": principal.client_id, "sub": principal.subject,
            "iss": server.issuer, "exp": principal.expires_at, "jti": principal.token_id,
        }


class RevocationEndpoint(_RevocationEndpoint):  # type: ignore[misc]  # Any base
    """RFC 7009 as Authlib implements it: a client may revoke the tokens issued to it (another
    client's is ``invalid_grant``), and a token that is unknown, expired or forged is a 200 that
    changes nothing (§2.2). Access tokens are self-contained JWTs, valid until they expire
    (``ARCHWAY_ACCESS_TOKEN_TTL_SECONDS``): presenting one is ``unsupported_token_type``
    (§2.2.1), which tells the client so instead of a 200 that would claim it was revoked."""

    # Public clients revoke their refresh tokens too (RFC 7009 §2.1), by client_id alone.
    CLIENT_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]  # noqa: RUF012  # read only

    def query_token(self, token_string: str, token_type_hint: str | None) -> AnyToken | None:
        server: AuthorizationServer = self.server
        return server.any_token(token_string, token_type_hint)

    def revoke_token(self, token: AnyToken, request: object) -> None:
        """A refresh token: its whole family (the grant) is revoked."""
        if isinstance(token, StoredRefreshToken):
            server: AuthorizationServer = self.server
            _on_loop(server.service.revoke_refresh_family, token.token)
            return
        error = UnsupportedTokenTypeError()
        error.description = "Access tokens are not revocable: they are valid until they expire."
        raise error


class StoredRefreshToken(TokenMixin):  # type: ignore[misc]  # Any base
    """Authlib's view of a usable refresh token."""

    def __init__(self, token: RefreshToken) -> None:
        self.token = token

    def check_client(self, client: Client) -> bool:
        return bool(self.token.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return " ".join(sorted(self.token.scopes))

    def get_expires_in(self) -> int:
        return max(0, int(self.token.expires_at.timestamp() - time.time()))

    def is_expired(self) -> bool:
        return self.token.expires_at.timestamp() <= time.time()

    def is_revoked(self) -> bool:
        return self.token.revoked_at is not None or self.token.used_at is not None


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]  # Any base
    """RFC 6749 §6 as Authlib implements it, rotating: every use returns a new refresh token
    (``INCLUDE_NEW_REFRESH_TOKEN``) and the used one is claimed when the new one is saved (in
    one unit of work, :meth:`AuthorizationServer.save_token`). Public clients (no secret)
    authenticate by ``client_id`` alone (``none``), as they got the token with PKCE."""

    TOKEN_ENDPOINT_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]  # noqa: RUF012  # read only
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> StoredRefreshToken | None:
        server: AuthorizationServer = self.server
        return server.usable_refresh_token(refresh_token)

    def authenticate_user(self, refresh_token: StoredRefreshToken) -> User | None:
        server: AuthorizationServer = self.server
        return _on_loop(server.service.user_for_token, refresh_token.token.user_id)

    def revoke_old_credential(self, refresh_token: StoredRefreshToken) -> None:
        """Nothing left to do: the new token was saved by claiming this one."""


AnyToken = AccessToken | StoredRefreshToken


class StoredCode:
    """Authlib's view of a spent authorization code (its AuthorizationCodeMixin and what
    :class:`CodeChallenge` reads)."""

    def __init__(self, code: AuthorizationCode) -> None:
        self.code = code
        self.code_challenge = code.code_challenge
        self.code_challenge_method = code.code_challenge_method

    def get_redirect_uri(self) -> str | None:
        return self.code.redirect_uri

    def get_scope(self) -> str:
        return " ".join(sorted(self.code.scopes))


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]  # Any base
    """PKCE (RFC 7636) as Authlib checks it, required of every client and S256 only: a request
    without a challenge, or with ``plain`` (or no method, which means plain), is refused."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012  # read, never changed

    def validate_code_challenge(self, grant: object, redirect_uri: str) -> None:
        data = grant.request.payload.data  # type: ignore[attr-defined]  # Authlib's grant
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send a 'code_challenge' (S256).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("The 'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(_AuthorizationCodeGrant):  # type: ignore[misc]  # Any base
    """RFC 6749 §4.1 as Authlib implements it. A code is spent when it is looked up (so that of
    two uses at once only one gets it, and a second use revokes what the first got); public
    clients authenticate by ``client_id`` alone and prove the code with PKCE."""

    TOKEN_ENDPOINT_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]  # noqa: RUF012  # read only

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        server: AuthorizationServer = self.server
        data = request.payload.data
        user: User = request.user
        stored = new_authorization_code(
            code, client_id=request.client.get_client_id(), user_id=user.id,
            redirect_uri=request.payload.redirect_uri,
            scopes=frozenset(request.scope.split()),
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"])
        _on_loop(server.service.save_authorization_code, stored)

    def query_authorization_code(self, code: str, client: Client) -> StoredCode | None:
        server: AuthorizationServer = self.server
        found = _on_loop(server.service.take_authorization_code, code, client.get_client_id())
        return None if found is None else StoredCode(found)

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        """Nothing left to do: the code was spent when it was looked up."""

    def authenticate_user(self, authorization_code: StoredCode) -> User | None:
        server: AuthorizationServer = self.server
        return _on_loop(server.service.user_for_token, authorization_code.code.user_id)


@dataclass(frozen=True)
class HttpRequest:
    """What the adapter hands the core: the request's public URI (the issuer's, so that a TLS
    proxy in front does not make it look like plain http), its headers (a case-insensitive
    mapping) and its decoded form, each parameter once."""

    method: str
    uri: str
    headers: Mapping[str, str]
    form: Mapping[str, str]


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

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


class AuthorizationServer(_AuthlibServer):  # type: ignore[misc]  # Any base
    """Authlib's server with Archway's storage; call :meth:`respond` from async code."""

    def __init__(
        self, service: IdentityService[Any], verifier: TokenVerifier, *, issuer: str
    ) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.service = service
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
        return _on_loop(self._verified, token)

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

    def send_signal(self, name: str, *args: object, **kwargs: object) -> None:
        """Authlib's signals (client authenticated, token revoked): nobody listens here."""

    def query_client(self, client_id: str) -> Client | None:
        client = _on_loop(self.service.active_client, client_id)
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
            if not _on_loop(self.service.rotate_refresh_token, used.token, value):
                raise InvalidGrantError("The refresh token was already used.")
            return
        code: StoredCode | None = request.authorization_code
        if code is None:
            raise RuntimeError("a refresh token from neither a code nor a refresh token")
        _on_loop(partial(
            self.service.issue_refresh_token, code.code.user_id, code.code.client_id,
            code.code.scopes, family_id=code.code.family_id, value=value))

    def usable_refresh_token(self, value: str) -> StoredRefreshToken | None:
        token = _on_loop(self.service.usable_refresh_token, value)
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
            issued = _on_loop(self.service.issue_user_token, user, client.client.client_id,
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
        issued = _on_loop(self.service.issue_client_token, client.client, sorted(granted))
        return {
            "access_token": issued.token, "token_type": "Bearer",
            "expires_in": issued.expires_in, "scope": " ".join(sorted(granted)),
        }


def _on_loop(work: Callable[..., Coroutine[Any, Any, T]], *args: object) -> T:
    """Run an async call of the service on the event loop from Authlib's worker thread."""
    return anyio.from_thread.run(work, *args)

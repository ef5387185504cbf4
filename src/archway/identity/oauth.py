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

from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.from_thread
import anyio.to_thread
from authlib.oauth2 import AuthorizationServer as _AuthlibServer
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    grants,
)

from archway.identity.domain import MACHINE_SCOPES, OAuthClient
from archway.identity.service import IdentityService
from archway.kernel.auth.principal import SCOPES

T = TypeVar("T")

TOKEN_PATH = "/oauth/token"
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

    def get_allowed_scope(self, scope: str | None) -> str:
        """What of ``scope`` the client may have (all it may have when it names none)."""
        allowed = self.client.scopes
        if not scope:
            return " ".join(sorted(allowed))
        return " ".join(sorted(set(scope.split()) & allowed))

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

    def __init__(self, service: IdentityService[Any], *, issuer: str) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self._service = service
        self.issuer = issuer
        self.register_token_generator("default", self._generate_token)
        self.register_grant(ClientCredentialsGrant)

    async def respond(self, endpoint: str, request: HttpRequest) -> HttpResponse:
        """Run Authlib's ``endpoint`` (``"token"``) on ``request`` in a worker thread."""
        work = {"token": self.create_token_response}[endpoint]

        def run() -> HttpResponse:
            try:
                oauth_request = _FormRequest(request)
            except OAuth2Error as error:  # plain http off loopback (InsecureTransportError)
                result: HttpResponse = self.handle_error_response(None, error)
                return result
            answer: HttpResponse = work(oauth_request)
            return answer

        return await anyio.to_thread.run_sync(run)

    def metadata(self) -> dict[str, object]:
        """RFC 8414: what this server serves now (the authorization endpoint, and so the
        ``code`` response type, come with the authorization code grant)."""
        return {
            "issuer": self.issuer,
            "token_endpoint": self.issuer + TOKEN_PATH,
            "jwks_uri": self.issuer + JWKS_PATH,
            "grant_types_supported": sorted(
                grant.GRANT_TYPE for grant, _ in self._token_grants),
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
            "scopes_supported": list(SCOPES),
        }

    # Authlib's hooks: called by its core, in the worker thread ----------------------------

    def create_oauth2_request(self, request: _FormRequest) -> _FormRequest:
        return request  # built by respond(), where an insecure URI can still be answered

    def handle_response(
        self, status: int, body: Mapping[str, Any] | str, headers: Sequence[tuple[str, str]]
    ) -> HttpResponse:
        return HttpResponse(status, body, headers)

    def send_signal(self, name: str, *args: object, **kwargs: object) -> None:
        """Authlib's signals (client authenticated, token revoked): nobody listens here."""

    def query_client(self, client_id: str) -> Client | None:
        client = _on_loop(self._service.active_client, client_id)
        return None if client is None else Client(client)

    def save_token(self, token: Mapping[str, Any], request: OAuth2Request) -> None:
        """Access tokens are self-contained JWTs (RFC 9068) and are not stored."""

    def _generate_token(
        self,
        grant_type: str,
        client: Client,
        user: object = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, object]:
        if grant_type != "client_credentials":
            raise RuntimeError(f"no token generator for {grant_type}")
        # A token the client gets for itself acts for no user: only machine scopes.
        granted = set(client.get_allowed_scope(scope).split()) & MACHINE_SCOPES
        if not granted:
            raise InvalidScopeError("The client may not have any of the requested scopes.")
        issued = _on_loop(self._service.issue_client_token, client.client, sorted(granted))
        return {
            "access_token": issued.token, "token_type": "Bearer",
            "expires_in": issued.expires_in, "scope": " ".join(sorted(granted)),
        }


def _on_loop(work: Callable[..., Coroutine[Any, Any, T]], *args: object) -> T:
    """Run an async call of the service on the event loop from Authlib's worker thread."""
    return anyio.from_thread.run(work, *args)

"""Authlib's grants and endpoints as Archway configures them: client credentials, authorization
code with PKCE (S256 only), rotating refresh tokens, RFC 7662 introspection and RFC 7009
revocation. Each storage hook hops to the event loop (:func:`~.oauth_tokens.on_loop`) for the
identity service's async call; the grant logic is Authlib's."""

from __future__ import annotations

from typing import Any, Protocol

from authlib.oauth2.rfc6749 import (
    InvalidRequestError,
    OAuth2Request,
    UnsupportedTokenTypeError,
    grants,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant as _AuthorizationCodeGrant
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint

from archway.identity.domain import User, new_authorization_code
from archway.identity.oauth_tokens import (
    CONFIDENTIAL_AUTH_METHODS,
    AnyToken,
    Client,
    StoredCode,
    StoredRefreshToken,
    on_loop,
)
from archway.identity.revoked_tokens import Denylist
from archway.identity.service import IdentityService


class GrantServer(Protocol):
    """What the grants and endpoints ask of their server (``oauth.AuthorizationServer``)."""

    service: IdentityService[Any]
    issuer: str
    denylist: Denylist[Any] | None

    def any_token(self, value: str, hint: str | None) -> AnyToken | None: ...
    def usable_refresh_token(self, value: str) -> StoredRefreshToken | None: ...


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]  # Any base
    """RFC 6749 §4.4 as Authlib implements it, with both secret methods allowed."""

    # Authlib reads this class attribute and never changes it:
    TOKEN_ENDPOINT_AUTH_METHODS = list(CONFIDENTIAL_AUTH_METHODS)  # noqa: RUF012



class IntrospectionEndpoint(_IntrospectionEndpoint):  # type: ignore[misc]  # Any base
    """RFC 7662 as Authlib implements it. A client may introspect the tokens issued to it; any
    other token, like an unknown, expired or forged one, is ``{"active": false}``."""

    CLIENT_AUTH_METHODS = list(CONFIDENTIAL_AUTH_METHODS)  # noqa: RUF012  # read, never changed

    def query_token(self, token_string: str, token_type_hint: str | None) -> AnyToken | None:
        server: GrantServer = self.server
        return server.any_token(token_string, token_type_hint)

    def check_permission(self, token: AnyToken, client: Client, request: object) -> bool:
        return bool(token.check_client(client))

    def introspect_token(self, token: AnyToken) -> dict[str, object]:
        server: GrantServer = self.server
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
    changes nothing (§2.2). A refresh token revokes its whole family; an access token (a JWT,
    otherwise valid until it expires) goes on the verifiers' denylist by its ``jti`` until then
    (``revoked_tokens.py``), and every route refuses it from then on."""

    # Public clients revoke their refresh tokens too (RFC 7009 §2.1), by client_id alone.
    CLIENT_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]  # noqa: RUF012  # read only

    def query_token(self, token_string: str, token_type_hint: str | None) -> AnyToken | None:
        server: GrantServer = self.server
        return server.any_token(token_string, token_type_hint)

    def revoke_token(self, token: AnyToken, request: object) -> None:
        server: GrantServer = self.server
        if isinstance(token, StoredRefreshToken):
            on_loop(server.service.revoke_refresh_family, token.token)
            return
        if server.denylist is None:
            error = UnsupportedTokenTypeError()
            error.description = "Access tokens are not revocable here: they expire."
            raise error
        principal = token.principal
        on_loop(server.denylist.revoke, principal.token_id, principal.expires_at)


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]  # Any base
    """RFC 6749 §6 as Authlib implements it, rotating: every use returns a new refresh token
    (``INCLUDE_NEW_REFRESH_TOKEN``) and the used one is claimed when the new one is saved (in
    one unit of work, :meth:`AuthorizationServer.save_token`). Public clients (no secret)
    authenticate by ``client_id`` alone (``none``), as they got the token with PKCE."""

    TOKEN_ENDPOINT_AUTH_METHODS = [*CONFIDENTIAL_AUTH_METHODS, "none"]  # noqa: RUF012  # read only
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> StoredRefreshToken | None:
        server: GrantServer = self.server
        return server.usable_refresh_token(refresh_token)

    def authenticate_user(self, refresh_token: StoredRefreshToken) -> User | None:
        server: GrantServer = self.server
        return on_loop(server.service.user_for_token, refresh_token.token.user_id)

    def revoke_old_credential(self, refresh_token: StoredRefreshToken) -> None:
        """Nothing left to do: the new token was saved by claiming this one."""



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
        server: GrantServer = self.server
        data = request.payload.data
        user: User = request.user
        stored = new_authorization_code(
            code, client_id=request.client.get_client_id(), user_id=user.id,
            redirect_uri=request.payload.redirect_uri,
            scopes=frozenset(request.scope.split()),
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"])
        on_loop(server.service.save_authorization_code, stored)

    def query_authorization_code(self, code: str, client: Client) -> StoredCode | None:
        server: GrantServer = self.server
        found = on_loop(server.service.take_authorization_code, code, client.get_client_id())
        return None if found is None else StoredCode(found)

    def delete_authorization_code(self, authorization_code: StoredCode) -> None:
        """Nothing left to do: the code was spent when it was looked up."""

    def authenticate_user(self, authorization_code: StoredCode) -> User | None:
        server: GrantServer = self.server
        return on_loop(server.service.user_for_token, authorization_code.code.user_id)


"""Authlib's views of Archway's OAuth objects: a registered client, a verified access token, a
stored refresh token and a spent authorization code (Authlib's ``ClientMixin``, ``TokenMixin``
and what its grants read of a code), plus the hop from Authlib's worker thread back to the
event loop that every storage hook takes (:func:`on_loop`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import anyio.from_thread
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin

from archway.identity.domain import AuthorizationCode, OAuthClient, RefreshToken
from archway.kernel.auth.principal import Principal

T = TypeVar("T")

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



def on_loop(work: Callable[..., Coroutine[Any, Any, T]], *args: object) -> T:
    """Run an async call of the service on the event loop from Authlib's worker thread."""
    return anyio.from_thread.run(work, *args)

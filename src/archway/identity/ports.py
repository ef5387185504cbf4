"""Identity's ports: the repositories a unit of work sees (``store.py`` implements them; tests
use fakes) and the plain values its use cases take and give."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from archway.identity.domain import AuthorizationCode, OAuthClient, RefreshToken, User
from archway.kernel.pagination import Page, PageRequest


class Users(Protocol):
    """The users a unit of work sees (``store.UserRepository``; tests use a fake)."""

    def get(self, user_id: str) -> User | None: ...
    def by_email(self, email: str) -> User | None: ...
    def add(self, user: User) -> None: ...
    def save(self, user: User) -> None: ...
    def remove(self, user_id: str) -> bool: ...
    def list(self, page: PageRequest) -> Page[User]: ...


class Clients(Protocol):
    """The OAuth clients a unit of work sees (``store.ClientRepository``; tests use a fake)."""

    def get(self, client_id: str) -> OAuthClient | None: ...
    def add(self, client: OAuthClient) -> None: ...
    def save(self, client: OAuthClient) -> bool: ...
    def revoke(self, client: OAuthClient) -> bool: ...
    def list(self) -> list[OAuthClient]: ...
    def page(self, page: PageRequest) -> Page[OAuthClient]: ...


class RefreshTokens(Protocol):
    """The refresh tokens a unit of work sees (``store.RefreshTokenRepository``; fakes)."""

    def by_digest(self, digest: str) -> RefreshToken | None: ...
    def add(self, token: RefreshToken) -> None: ...
    def claim(self, token_id: str, at: datetime) -> bool: ...
    def revoke_family(self, family_id: str, at: datetime) -> int: ...
    def revoke_user(self, user_id: str, at: datetime) -> int: ...


class AuthorizationCodes(Protocol):
    """The authorization codes a unit of work sees (``store.AuthorizationCodeRepository``)."""

    def by_digest(self, digest: str) -> AuthorizationCode | None: ...
    def add(self, code: AuthorizationCode) -> None: ...
    def claim(self, digest: str, at: datetime) -> bool: ...
    def remove_expired(self, before: datetime) -> int: ...


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """What registering a client takes; ``secret`` is for the seeded demo client only."""

    client_id: str
    name: str
    public: bool
    grant_types: frozenset[str]
    scopes: frozenset[str]
    redirect_uris: tuple[str, ...] = ()
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class ClientChanges:
    """What changing a client may change; ``None`` leaves it as it is."""

    name: str | None = None
    redirect_uris: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class UserChanges:
    name: str | None = None
    email: str | None = None
    password: str | None = None

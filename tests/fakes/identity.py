"""Fakes of identity's repositories: users, OAuth clients, API keys, tokens, codes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from archway.identity.domain import ApiKey, AuthorizationCode, OAuthClient, RefreshToken, User
from archway.kernel.errors import AlreadyExists, Conflict
from archway.kernel.pagination import Page, PageRequest
from tests.fakes.state import FakeIntegrityError, FakeState


class FakeRevokedTokens:
    def __init__(self, state: FakeState) -> None:
        self._revoked = state.revoked_tokens

    def add(self, token_id: str, expires_at: datetime) -> None:
        if token_id in self._revoked:
            raise AlreadyExists(f"The token {token_id} is already revoked.")
        self._revoked[token_id] = expires_at

    def unexpired(self, now: datetime) -> list[tuple[str, datetime]]:
        return [(jti, exp) for jti, exp in self._revoked.items() if exp > now]

    def remove_expired(self, before: datetime) -> int:
        gone = [jti for jti, exp in self._revoked.items() if exp < before]
        for jti in gone:
            del self._revoked[jti]
        return len(gone)


class FakeUsers:
    def __init__(self, state: FakeState) -> None:
        self._users = state.users

    def get(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    def by_email(self, email: str) -> User | None:
        wanted = email.strip().lower()
        return next((u for u in self._users.values() if u.email == wanted), None)

    def add(self, user: User) -> None:
        if self.by_email(user.email) is not None:
            raise Conflict("A user with this email already exists.")
        self._users[user.id] = user

    def save(self, user: User) -> None:
        other = self.by_email(user.email)
        if other is not None and other.id != user.id:
            raise Conflict("A user with this email already exists.")
        self._users[user.id] = user

    def remove(self, user_id: str) -> bool:
        return self._users.pop(user_id, None) is not None

    def list(self, page: PageRequest) -> Page[User]:
        ordered = sorted(self._users.values(), key=lambda u: u.id)
        if page.wants_cursor:
            after = page.after[0] if page.after else ""
            rest = [u for u in ordered if u.id > after]
            items = rest[: page.limit]
            more = len(rest) > page.limit
            return Page(items, next_after=(items[-1].id,) if more and items else None)
        offset = page.offset or 0
        return Page(ordered[offset: offset + page.limit], total=len(ordered))


class FakeClients:
    def __init__(self, state: FakeState) -> None:
        self._clients = state.clients

    def get(self, client_id: str) -> OAuthClient | None:
        return self._clients.get(client_id)

    def add(self, client: OAuthClient) -> None:
        if client.client_id in self._clients:
            raise Conflict(f"A client with id {client.client_id} already exists.")
        self._clients[client.client_id] = client

    def save(self, client: OAuthClient) -> bool:
        stored = self._clients.get(client.client_id)
        if stored is None or not stored.is_active:
            return False
        self._clients[client.client_id] = replace(
            stored, name=client.name, redirect_uris=client.redirect_uris,
            secret_digest=client.secret_digest)
        return True

    def revoke(self, client: OAuthClient) -> bool:
        stored = self._clients.get(client.client_id)
        if stored is None or not stored.is_active:
            return False
        self._clients[client.client_id] = client
        return True

    def list(self) -> list[OAuthClient]:
        return sorted(self._clients.values(), key=lambda c: c.client_id)

    def page(self, page: PageRequest) -> Page[OAuthClient]:
        ordered = self.list()
        if page.wants_cursor:
            after = page.after[0] if page.after else ""
            rest = [c for c in ordered if c.client_id > after]
            items = rest[: page.limit]
            more = len(rest) > page.limit
            return Page(items, next_after=(items[-1].client_id,) if more and items else None)
        offset = page.offset or 0
        return Page(ordered[offset: offset + page.limit], total=len(ordered))


class FakeApiKeys:
    def __init__(self, state: FakeState) -> None:
        self._keys = state.api_keys

    def get(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    def by_digest(self, digest: str) -> ApiKey | None:
        return next((k for k in self._keys.values() if k.digest == digest), None)

    def add(self, key: ApiKey) -> None:
        if key.id in self._keys or self.by_digest(key.digest) is not None:
            raise FakeIntegrityError(key.id)  # a UUIDv7 or a 256-bit digest twice: a bug
        self._keys[key.id] = key

    def revoke(self, key: ApiKey) -> bool:
        stored = self._keys.get(key.id)
        if stored is None or not stored.is_active:
            return False
        self._keys[key.id] = replace(stored, revoked_at=key.revoked_at)
        return True

    def touch(self, used: dict[str, datetime]) -> int:
        changed = 0
        for key_id, at in used.items():
            stored = self._keys.get(key_id)
            if stored is not None and (stored.last_used_at is None or stored.last_used_at < at):
                self._keys[key_id] = replace(stored, last_used_at=at)
                changed += 1
        return changed

    def page(self, page: PageRequest) -> Page[ApiKey]:
        ordered = sorted(self._keys.values(), key=lambda k: k.id)
        if page.wants_cursor:
            after = page.after[0] if page.after else ""
            rest = [k for k in ordered if k.id > after]
            items = rest[: page.limit]
            more = len(rest) > page.limit
            return Page(items, next_after=(items[-1].id,) if more and items else None)
        offset = page.offset or 0
        return Page(ordered[offset: offset + page.limit], total=len(ordered))


class FakeRefreshTokens:
    def __init__(self, state: FakeState) -> None:
        self._tokens = state.refresh_tokens

    def by_digest(self, digest: str) -> RefreshToken | None:
        return next((t for t in self._tokens.values() if t.digest == digest), None)

    def add(self, token: RefreshToken) -> None:
        if self.by_digest(token.digest) is not None:
            raise FakeIntegrityError("identity_refresh_tokens.digest")
        self._tokens[token.id] = token

    def claim(self, token_id: str, at: datetime) -> bool:
        token = self._tokens.get(token_id)
        if token is None or token.used_at is not None or token.revoked_at is not None:
            return False
        self._tokens[token_id] = replace(token, used_at=at)
        return True

    def revoke_family(self, family_id: str, at: datetime) -> int:
        return self._revoke(lambda t: t.family_id == family_id, at)

    def revoke_user(self, user_id: str, at: datetime) -> int:
        return self._revoke(lambda t: t.user_id == user_id, at)

    def _revoke(self, which: Callable[[RefreshToken], bool], at: datetime) -> int:
        chosen = [t for t in self._tokens.values() if which(t) and t.revoked_at is None]
        for token in chosen:
            self._tokens[token.id] = replace(token, revoked_at=at)
        return len(chosen)


class FakeAuthorizationCodes:
    def __init__(self, state: FakeState) -> None:
        self._codes = state.codes

    def by_digest(self, digest: str) -> AuthorizationCode | None:
        return self._codes.get(digest)

    def add(self, code: AuthorizationCode) -> None:
        if code.digest in self._codes:
            raise FakeIntegrityError("identity_authorization_codes.digest")
        self._codes[code.digest] = code

    def claim(self, digest: str, at: datetime) -> bool:
        code = self._codes.get(digest)
        if code is None or code.used_at is not None or code.expires_at <= at:
            return False
        self._codes[digest] = replace(code, used_at=at)
        return True

    def remove_expired(self, before: datetime) -> int:
        gone = [digest for digest, code in self._codes.items() if code.expires_at < before]
        for digest in gone:
            del self._codes[digest]
        return len(gone)

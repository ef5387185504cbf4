"""Identity use cases: one method each, with the rule and who may call it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol

from archway.identity.domain import (
    AuthorizationCode,
    OAuthClient,
    RefreshToken,
    User,
    check_email,
    check_name,
    check_password,
    check_registration,
    is_valid_client_id,
    new_client,
    new_refresh_token,
    new_user,
    normalize_email,
    raise_if_any,
    secret_digest,
)
from archway.identity.keys import KeyRing, TokenIssuer
from archway.identity.passwords import PasswordHasher
from archway.identity.sign_ins import RetryLater, SignInThrottle
from archway.kernel.auth.principal import SCOPES, Principal
from archway.kernel.errors import Conflict, InvalidInput, NotFound
from archway.kernel.ids import is_valid_id
from archway.kernel.pagination import Page, PageRequest, bad_cursor, cursor_id
from archway.kernel.ttl_cache import TtlCache
from archway.kernel.uow import Tx, UnitsOfWork

DEV_CLIENT_ID = "archway-cli"


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
class IssuedToken:
    token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class UserChanges:
    name: str | None = None
    email: str | None = None
    password: str | None = None


class IdentityService(Generic[Tx]):
    """``db`` runs the units of work, ``users`` makes the repository of one
    (``store.UserRepository`` over ``kernel.db.Database``; fakes in tests)."""

    def __init__(
        self,
        db: UnitsOfWork[Tx],
        hasher: PasswordHasher,
        keys: KeyRing,
        issuer: TokenIssuer,
        *,
        users: Callable[[Tx], Users],
        clients: Callable[[Tx], Clients],
        refresh_tokens: Callable[[Tx], RefreshTokens],
        codes: Callable[[Tx], AuthorizationCodes],
        cache_ttl_seconds: float = 0.0,
        refresh_token_ttl_seconds: int = 2_592_000,
        sign_ins: SignInThrottle | None = None,
    ) -> None:
        self._db = db
        self.sign_ins = sign_ins or SignInThrottle.in_memory()
        self._users = users
        self._clients = clients
        self._refresh_tokens = refresh_tokens
        self._codes = codes
        self._refresh_ttl = refresh_token_ttl_seconds
        # `me` is the hottest authenticated read; see docs/architecture.md on the TTL.
        self._cached: TtlCache[str, User | None] = TtlCache(cache_ttl_seconds)
        self._cached_clients: TtlCache[str, OAuthClient | None] = TtlCache(cache_ttl_seconds)
        self._hasher = hasher
        self.keys = keys
        self._issuer = issuer

    async def register(
        self, email: str, password: str, name: str, roles: frozenset[str] = frozenset({"customer"})
    ) -> User:
        """Anyone may register; new users are customers. Emails are unique, and the answer
        does not say whether one was taken (no user enumeration, see docs/security.md): an
        email that already has an account gets a user exactly like a new one, with the same
        work done (the password hashed, one write unit), but nothing is stored and the
        existing account is left unchanged."""
        raise_if_any(check_registration(email, password, name))
        user = new_user(email, name, await self._hasher.hash(password), roles)

        def add_unless_taken(tx: Tx) -> None:
            users = self._users(tx)
            if users.by_email(user.email) is None:
                users.add(user)

        # A registration of the same email that commits first makes this one a Conflict:
        # it is answered like the email taken before, for the same reason.
        with suppress(Conflict):
            await self._db.write(add_unless_taken)
        return user

    async def get_user(self, principal: Principal, user_id: str) -> User:
        """The user itself (``profile``) or an admin (``users:read``)."""
        principal.acts_on_self_or_admin(user_id, "users:read")
        return await self._existing(user_id)

    async def me(self, principal: Principal) -> User:
        """The caller's own user (``profile``); a token of a deleted user finds nothing."""
        principal.require_scope("profile")
        return await self._existing(principal.subject)

    async def user_exists(self, user_id: str) -> bool:
        """Whether ``user_id`` names a user (for the guard: a token outlives its user). From the
        same short-lived cache as :meth:`me`; a deletion in this process drops it at once, one
        in another process shows within ``cache_ttl_seconds``."""
        return await self._cached_user(user_id) is not None

    async def list_users(self, principal: Principal, page: PageRequest) -> Page[User]:
        """Admins with ``users:read``."""
        principal.require_admin("users:read")
        if page.after is not None:
            page = replace(page, after=(cursor_id(page.after[0]),))
        return await self._db.read(lambda tx: self._users(tx).list(page))

    async def update_user(self, principal: Principal, user_id: str, changes: UserChanges) -> User:
        """The user itself (``profile``) or an admin (``users:write``); email stays unique."""
        principal.acts_on_self_or_admin(user_id, "users:write")
        errors = []
        if changes.email is not None:
            errors += check_email(changes.email)
        if changes.name is not None:
            errors += check_name(changes.name)
        if changes.password is not None:
            errors += check_password(changes.password)
        raise_if_any(errors)
        new_hash = await self._hasher.hash(changes.password) if changes.password else None

        def apply(tx: Tx) -> User:
            repo = self._users(tx)
            user = repo.get(user_id) if is_valid_id(user_id) else None
            if user is None:
                raise NotFound("No such user.")
            updated = user.changed(
                name=changes.name.strip() if changes.name is not None else user.name,
                email=normalize_email(changes.email) if changes.email is not None else user.email,
                password_hash=new_hash or user.password_hash,
            )
            repo.save(updated)
            return updated

        updated = await self._db.write(apply)
        self._cached.drop(user_id)
        return updated

    async def delete_user(self, principal: Principal, user_id: str) -> None:
        """The user itself (``profile``) or an admin (``users:write``); then 404 for everyone,
        and every refresh token of the user is revoked with it."""
        principal.acts_on_self_or_admin(user_id, "users:write")
        def remove(tx: Tx) -> bool:
            if not self._users(tx).remove(user_id):
                return False
            self._refresh_tokens(tx).revoke_user(user_id, datetime.now(UTC))
            return True

        removed = is_valid_id(user_id) and await self._db.write(remove)
        self._cached.drop(user_id)
        if not removed:
            raise NotFound("No such user.")

    async def check_password(self, email: str, password: str) -> User | None:
        """The user whose password this is, else ``None`` (for login; hides which was wrong)."""
        user = await self._db.read(lambda tx: self._users(tx).by_email(email))
        if user is None:
            await self._hasher.hash(password)  # same cost either way: no user enumeration
            return None
        return user if await self._hasher.verify(user.password_hash, password) else None

    async def sign_in(
        self, email: str, password: str, *, address: str | None
    ) -> User | RetryLater | None:
        """The login page's check: :meth:`check_password` unless this email (known or not)
        or this client address failed too often lately (``identity.sign_ins``), in which
        case no password is hashed and the answer says how long to wait. A failure counts
        for both; a success forgets the email's failures."""
        wait = await self.sign_ins.wait(email, address)
        if wait is not None:
            return wait
        user = await self.check_password(email, password)
        if user is None:
            await self.sign_ins.failed(email, address)
        else:
            await self.sign_ins.succeeded(email)
        return user

    async def issue_dev_token(
        self, email: str, scopes: list[str], ttl_seconds: int | None = None
    ) -> str:
        """Development only: a token for ``email`` with the scopes asked for (CLI ``token``)."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise InvalidInput.parameter("scope", f"unknown scopes: {' '.join(unknown)}")
        user = await self._db.read(lambda tx: self._users(tx).by_email(email))
        if user is None:
            raise NotFound(f"No user with email {email}.")
        return await self._issuer.issue(
            subject=user.id, scopes=scopes, roles=user.roles, client_id=DEV_CLIENT_ID,
            ttl_seconds=ttl_seconds,
        )

    async def subject_exists(self, subject: str) -> bool:
        """Whether a token's subject is still someone: a user that exists, or (a token a client
        got for itself) an OAuth client that is not revoked. For the guard, from the same
        short-lived caches as :meth:`user_exists`."""
        if is_valid_client_id(subject):
            client = await self.active_client(subject)
            return client is not None
        return await self.user_exists(subject)

    # OAuth clients: operators (the CLI, the seed) manage them -------------------------------

    async def register_client(self, spec: ClientSpec) -> tuple[OAuthClient, str | None]:
        """Operators: a new client and its secret (``None`` for a public client), shown this
        once: only its SHA-256 digest is stored. Client ids are unique (409)."""
        client, secret = new_client(
            spec.client_id, spec.name, public=spec.public, grant_types=spec.grant_types,
            scopes=spec.scopes, redirect_uris=spec.redirect_uris, secret=spec.secret)
        await self._db.write(lambda tx: self._clients(tx).add(client))
        self._cached_clients.drop(client.client_id)
        return client, secret

    async def create_client(
        self, principal: Principal, spec: ClientSpec
    ) -> tuple[OAuthClient, str | None]:
        """Admins with ``users:write`` (REST): :meth:`register_client`, never with a given
        secret."""
        principal.require_admin("users:write")
        return await self.register_client(replace(spec, secret=None))

    async def get_client(self, principal: Principal, client_id: str) -> OAuthClient:
        """Admins with ``users:read``: a client, revoked or not."""
        principal.require_admin("users:read")
        client = await self._db.read(lambda tx: self._clients(tx).get(client_id)) \
            if is_valid_client_id(client_id) else None
        if client is None:
            raise NotFound(f"No client {client_id}.")
        return client

    async def list_clients_as(
        self, principal: Principal, page: PageRequest
    ) -> Page[OAuthClient]:
        """Admins with ``users:read``: every client, revoked ones included, by id."""
        principal.require_admin("users:read")
        if page.after is not None:
            after = page.after[0]
            if not isinstance(after, str) or not is_valid_client_id(after):
                raise bad_cursor()
        return await self._db.read(lambda tx: self._clients(tx).page(page))

    async def revoke_client_as(self, principal: Principal, client_id: str) -> OAuthClient:
        """Admins with ``users:write``: :meth:`revoke_client`."""
        principal.require_admin("users:write")
        return await self.revoke_client(client_id)

    async def list_clients(self) -> list[OAuthClient]:
        """Operators: every client, revoked ones included, by id."""
        return await self._db.read(lambda tx: self._clients(tx).list())

    async def revoke_client(self, client_id: str) -> OAuthClient:
        """Operators: the client can no longer authenticate, and the tokens it got for itself
        stop working (the guard asks :meth:`subject_exists`). Revoking twice changes nothing."""
        def revoke(tx: Tx) -> OAuthClient:
            repo = self._clients(tx)
            client = repo.get(client_id) if is_valid_client_id(client_id) else None
            if client is None:
                raise NotFound(f"No client {client_id}.")
            if not client.is_active:
                return client
            revoked = client.revoked()
            repo.revoke(revoked)
            return revoked

        revoked = await self._db.write(revoke)
        self._cached_clients.drop(client_id)
        return revoked

    async def active_client(self, client_id: str) -> OAuthClient | None:
        """The client with this id unless it is unknown or revoked (for client
        authentication: both are ``invalid_client``)."""
        if not is_valid_client_id(client_id):  # never reaches a store (PostgreSQL refuses NUL)
            return None
        client = await self._cached_clients.get_or_load(
            client_id, lambda: self._db.read(lambda tx: self._clients(tx).get(client_id)))
        return client if client is not None and client.is_active else None

    async def issue_client_token(self, client: OAuthClient, scopes: list[str]) -> IssuedToken:
        """An RFC 9068 access token a client gets for itself (client credentials, once the
        OAuth server authenticated it): its subject is the client, it carries no role, and it
        lives ``access_token_ttl_seconds``."""
        token = await self._issuer.issue(
            subject=client.client_id, scopes=scopes, roles=(), client_id=client.client_id)
        return IssuedToken(token, self._issuer.default_ttl)

    # Refresh tokens: the OAuth server's storage (identity/oauth.py) -------------------------

    async def issue_refresh_token(
        self, user_id: str, client_id: str, scopes: frozenset[str],
        *, family_id: str | None = None, value: str | None = None,
    ) -> str:
        """A new grant's first refresh token (the authorization code grant's, in the family its
        code names), shown once; stored as its digest."""
        token, shown = new_refresh_token(client_id, user_id, scopes, self._refresh_ttl,
                                         family_id=family_id, token=value)
        await self._db.write(lambda tx: self._refresh_tokens(tx).add(token))
        return shown

    async def save_authorization_code(self, code: AuthorizationCode) -> None:
        """Keeps a new code (its digest); codes expired a while ago go at the same time."""
        def save(tx: Tx) -> None:
            repo = self._codes(tx)
            repo.remove_expired(datetime.now(UTC) - timedelta(hours=1))
            repo.add(code)

        await self._db.write(save)

    async def take_authorization_code(self, value: str, client_id: str) -> AuthorizationCode | None:
        """The code ``value`` names, spent now, if it is ``client_id``'s, unused and not
        expired, of a user who still exists. A second use is refused and revokes the refresh
        tokens the first one got (RFC 6749 §4.1.2)."""
        digest = secret_digest(value)
        code = await self._db.read(lambda tx: self._codes(tx).by_digest(digest))
        if code is None or code.client_id != client_id:
            return None
        if code.used_at is not None:
            await self._revoke_family(code.family_id)
            return None
        if not await self._db.write(lambda tx: self._codes(tx).claim(digest, datetime.now(UTC))):
            await self._revoke_family(code.family_id)  # expired, or spent meanwhile
            return None
        return code if await self.user_exists(code.user_id) else None

    async def usable_refresh_token(self, value: str) -> RefreshToken | None:
        """The refresh token ``value`` names if it may be used now, of a user who still
        exists. A token that was already used is a replay (one of its two holders stole it):
        its whole family is revoked, and it is ``None`` like an unknown, expired or revoked
        one."""
        token = await self._db.read(lambda tx: self._refresh_tokens(tx).by_digest(
            secret_digest(value)))
        if token is None or token.revoked_at is not None:
            return None
        if token.used_at is not None:
            await self._revoke_family(token.family_id)
            return None
        if not token.is_usable(datetime.now(UTC)) or not await self.user_exists(token.user_id):
            return None
        return token

    async def rotate_refresh_token(self, used: RefreshToken, value: str) -> bool:
        """Exchange ``used`` for ``value``, the next token of its family (same user, client
        and scopes, a full lifetime), in one unit of work. ``False`` when ``used`` had been
        claimed meanwhile (two uses at once): then the family is revoked, the new one too."""
        token, _ = new_refresh_token(used.client_id, used.user_id, used.scopes,
                                     self._refresh_ttl, family_id=used.family_id, token=value)

        def rotate(tx: Tx) -> bool:
            repo = self._refresh_tokens(tx)
            if not repo.claim(used.id, datetime.now(UTC)):
                return False
            repo.add(token)
            return True

        if await self._db.write(rotate):
            return True
        await self._revoke_family(used.family_id)
        return False

    async def revoke_refresh_family(self, token: RefreshToken) -> None:
        """RFC 7009: revoking a refresh token revokes its grant, every token of its family."""
        await self._revoke_family(token.family_id)

    async def user_for_token(self, user_id: str) -> User | None:
        return await self._cached_user(user_id)

    async def issue_user_token(
        self, user: User, client_id: str, scopes: list[str]
    ) -> IssuedToken:
        """An RFC 9068 access token for ``user`` through ``client_id`` (after an OAuth grant),
        with the user's roles now."""
        token = await self._issuer.issue(
            subject=user.id, scopes=scopes, roles=user.roles, client_id=client_id)
        return IssuedToken(token, self._issuer.default_ttl)

    async def _revoke_family(self, family_id: str) -> None:
        await self._db.write(
            lambda tx: self._refresh_tokens(tx).revoke_family(family_id, datetime.now(UTC)))

    async def _cached_user(self, user_id: str) -> User | None:
        if not is_valid_id(user_id):  # never reaches a store (PostgreSQL refuses a NUL)
            return None
        return await self._cached.get_or_load(
            user_id, lambda: self._db.read(lambda tx: self._users(tx).get(user_id)))

    async def _existing(self, user_id: str) -> User:
        user = await self._cached_user(user_id)
        if user is None:
            raise NotFound("No such user.")
        return user

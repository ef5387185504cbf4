"""Identity use cases: one method each, with the rule and who may call it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime

from archway.identity.domain import (
    User,
    check_email,
    check_name,
    check_password,
    check_registration,
    is_valid_client_id,
    new_user,
    normalize_email,
    raise_if_any,
)
from archway.identity.keys import KeyRing, TokenIssuer
from archway.identity.oauth_storage import OAuthStorage
from archway.identity.passwords import PasswordHasher
from archway.identity.ports import (
    AuthorizationCodes,
    Clients,
    ClientSpec,
    IssuedToken,
    RefreshTokens,
    UserChanges,
    Users,
)
from archway.identity.sign_ins import RetryLater, SignInThrottle
from archway.kernel.auth.principal import SCOPES, Principal
from archway.kernel.errors import Conflict, InvalidInput, NotFound
from archway.kernel.ids import is_valid_id
from archway.kernel.pagination import Page, PageRequest, cursor_id
from archway.kernel.ttl_cache import TtlCache
from archway.kernel.uow import Tx, UnitsOfWork

__all__ = ["DEV_CLIENT_ID", "ClientSpec", "IdentityService", "IssuedToken", "UserChanges"]

DEV_CLIENT_ID = "archway-cli"


class IdentityService(OAuthStorage[Tx]):
    """Users, signing in, and (:class:`OAuthStorage`) the OAuth server's clients and grants.
    ``db`` runs the units of work, ``users`` makes the repository of one
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
        super().__init__(
            db, issuer, clients=clients, refresh_tokens=refresh_tokens, codes=codes,
            cache_ttl_seconds=cache_ttl_seconds,
            refresh_token_ttl_seconds=refresh_token_ttl_seconds)
        self.sign_ins = sign_ins or SignInThrottle.in_memory()
        self._users = users
        # `me` is the hottest authenticated read; see docs/architecture.md on the TTL.
        self._cached: TtlCache[str, User | None] = TtlCache(cache_ttl_seconds)
        self._hasher = hasher
        self.keys = keys

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
        for both; a success forgets the email's failures. An email's attempts take turns, so
        that those sent at once cannot all pass the check before any has counted."""
        async with self.sign_ins.attempt(email):
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

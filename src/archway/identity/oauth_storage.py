"""The OAuth server's storage as use cases: clients (operators and admins manage them), the
tokens clients get for themselves, authorization codes and refresh tokens (the grants'
storage, called from ``identity/oauth.py``). :class:`~archway.identity.service.IdentityService`
is this plus the users."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Generic

from archway.identity.domain import (
    AuthorizationCode,
    OAuthClient,
    RefreshToken,
    check_client_changes,
    is_valid_client_id,
    new_client,
    new_refresh_token,
    raise_if_any,
    secret_digest,
)
from archway.identity.keys import TokenIssuer
from archway.identity.ports import (
    AuthorizationCodes,
    ClientChanges,
    Clients,
    ClientSpec,
    IssuedToken,
    RefreshTokens,
)
from archway.kernel.auth.principal import Principal
from archway.kernel.errors import Conflict, NotFound
from archway.kernel.pagination import Page, PageRequest, bad_cursor
from archway.kernel.ttl_cache import TtlCache
from archway.kernel.uow import Tx, UnitsOfWork


class OAuthStorage(Generic[Tx]):
    """``clients``, ``refresh_tokens`` and ``codes`` make the repositories of one unit of work
    of ``db``; ``issuer`` signs the tokens."""

    def __init__(
        self,
        db: UnitsOfWork[Tx],
        issuer: TokenIssuer,
        *,
        clients: Callable[[Tx], Clients],
        refresh_tokens: Callable[[Tx], RefreshTokens],
        codes: Callable[[Tx], AuthorizationCodes],
        cache_ttl_seconds: float = 0.0,
        refresh_token_ttl_seconds: int = 2_592_000,
    ) -> None:
        self._db = db
        self._issuer = issuer
        self._clients = clients
        self._refresh_tokens = refresh_tokens
        self._codes = codes
        self._refresh_ttl = refresh_token_ttl_seconds
        self._cached_clients: TtlCache[str, OAuthClient | None] = TtlCache(cache_ttl_seconds)

    async def user_exists(self, user_id: str) -> bool:
        """Whether ``user_id`` names a user (codes and refresh tokens outlive their users)."""
        raise NotImplementedError

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

    async def update_client(self, client_id: str, changes: ClientChanges) -> OAuthClient:
        """Operators: a client's name and redirect URIs, under the rules of registering one
        (an authorization code client keeps at least one redirect URI). A revoked client
        cannot be changed (409)."""
        raise_if_any(check_client_changes(changes.name, changes.redirect_uris))
        return await self._change_client(client_id, lambda client: client.changed(
            name=changes.name, redirect_uris=changes.redirect_uris))

    async def update_client_as(
        self, principal: Principal, client_id: str, changes: ClientChanges
    ) -> OAuthClient:
        """Admins with ``users:write``: :meth:`update_client`."""
        principal.require_admin("users:write")
        return await self.update_client(client_id, changes)

    async def rotate_client_secret(self, client_id: str) -> tuple[OAuthClient, str]:
        """Operators: a confidential client's new secret, shown this once; the old one stops
        authenticating it at once in this process, within ``cache_ttl_seconds`` in others. The
        tokens it already got stay valid until they expire. A public client has no secret and
        a revoked one cannot be changed (409)."""
        shown: list[str] = []

        def rotate(client: OAuthClient) -> OAuthClient:
            if client.is_public:
                raise Conflict(f"{client.client_id} is a public client: it has no secret.")
            rotated, secret = client.with_new_secret()
            shown.append(secret)
            return rotated

        client = await self._change_client(client_id, rotate)
        return client, shown[0]

    async def rotate_client_secret_as(
        self, principal: Principal, client_id: str
    ) -> tuple[OAuthClient, str]:
        """Admins with ``users:write``: :meth:`rotate_client_secret`."""
        principal.require_admin("users:write")
        return await self.rotate_client_secret(client_id)

    async def _change_client(
        self, client_id: str, change: Callable[[OAuthClient], OAuthClient]
    ) -> OAuthClient:
        def apply(tx: Tx) -> OAuthClient:
            repo = self._clients(tx)
            client = repo.get(client_id) if is_valid_client_id(client_id) else None
            if client is None:
                raise NotFound(f"No client {client_id}.")
            if not client.is_active:
                raise Conflict(f"The client {client_id} is revoked.")
            changed = change(client)
            if not repo.save(changed):
                raise Conflict(f"The client {client_id} is revoked.")
            return changed

        changed = await self._db.write(apply)
        self._cached_clients.drop(client_id)
        return changed

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

    async def _revoke_family(self, family_id: str) -> None:
        await self._db.write(
            lambda tx: self._refresh_tokens(tx).revoke_family(family_id, datetime.now(UTC)))


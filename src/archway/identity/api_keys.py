"""API keys for machine consumers: made and revoked by admins (REST) and operators (the CLI),
verified on every request that sends ``X-API-Key``.

A key is shown once and stored as its SHA-256 digest (it has 256 bits of randomness, like a
client secret: a fast digest cannot be brute-forced). Verifying one is a digest and a lookup by
that digest, cached per process for ``cache_ttl_seconds`` (a revocation in this process drops
the entry at once; one made by another process shows within the TTL). A key's last use is
recorded behind the request, at most once every ``last_used_every_seconds`` per key and
process: never a write per request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Generic, Protocol

from archway.identity.domain import (
    LAST_USED_EVERY_SECONDS,
    ApiKey,
    looks_like_api_key,
    new_api_key,
    secret_digest,
)
from archway.kernel.auth.api_keys import KeyHolder
from archway.kernel.auth.principal import Principal
from archway.kernel.errors import NotFound
from archway.kernel.ids import is_valid_id
from archway.kernel.pagination import Page, PageRequest, cursor_id
from archway.kernel.ttl_cache import TtlCache
from archway.kernel.uow import Tx, UnitsOfWork

log = logging.getLogger(__name__)


class ApiKeys(Protocol):
    """The API keys a unit of work sees (``api_key_store.ApiKeyRepository``; tests use a fake)."""

    def get(self, key_id: str) -> ApiKey | None: ...
    def by_digest(self, digest: str) -> ApiKey | None: ...
    def add(self, key: ApiKey) -> None: ...
    def revoke(self, key: ApiKey) -> bool: ...
    def touch(self, used: dict[str, datetime]) -> int: ...
    def page(self, page: PageRequest) -> Page[ApiKey]: ...


class ApiKeyService(Generic[Tx]):
    def __init__(
        self,
        db: UnitsOfWork[Tx],
        *,
        keys: Callable[[Tx], ApiKeys],
        cache_ttl_seconds: float = 0.0,
        last_used_every_seconds: float = LAST_USED_EVERY_SECONDS,
    ) -> None:
        self._db = db
        self._keys = keys
        self._cached: TtlCache[str, ApiKey | None] = TtlCache(cache_ttl_seconds)
        self._every = last_used_every_seconds
        self._recorded: dict[str, datetime] = {}  # key id: last use written (or queued)
        self._pending: dict[str, datetime] = {}  # key id: a use not written yet
        self._writing: asyncio.Task[None] | None = None

    # Operators (the CLI) ---------------------------------------------------------------------

    async def create(
        self, consumer: str, plan: str, scopes: frozenset[str]
    ) -> tuple[ApiKey, str]:
        """A new key and its value, shown this once: only its SHA-256 digest is stored."""
        key, value = new_api_key(consumer, plan, scopes)
        await self._db.write(lambda tx: self._keys(tx).add(key))
        return key, value

    async def get(self, key_id: str) -> ApiKey:
        key = await self._db.read(lambda tx: self._keys(tx).get(key_id)) \
            if is_valid_id(key_id) else None
        if key is None:
            raise NotFound(f"No API key {key_id}.")
        return key

    async def page(self, page: PageRequest) -> Page[ApiKey]:
        """Every key, revoked ones included, by id (creation order); never a key's value."""
        if page.after is not None:
            page = replace(page, after=(cursor_id(page.after[0]),))
        return await self._db.read(lambda tx: self._keys(tx).page(page))

    async def revoke(self, key_id: str) -> ApiKey:
        """The key is refused from now on in this process, and in the others within the cache's
        TTL. Revoking twice changes nothing."""
        def revoke(tx: Tx) -> ApiKey:
            repo = self._keys(tx)
            key = repo.get(key_id) if is_valid_id(key_id) else None
            if key is None:
                raise NotFound(f"No API key {key_id}.")
            if not key.is_active:
                return key
            revoked = key.revoked()
            repo.revoke(revoked)
            return revoked

        revoked = await self._db.write(revoke)
        self._cached.drop(revoked.digest)
        return revoked

    # Admins (REST) ---------------------------------------------------------------------------

    async def create_as(
        self, principal: Principal, consumer: str, plan: str, scopes: frozenset[str]
    ) -> tuple[ApiKey, str]:
        """Admins with ``users:write``: :meth:`create`."""
        principal.require_admin("users:write")
        return await self.create(consumer, plan, scopes)

    async def get_as(self, principal: Principal, key_id: str) -> ApiKey:
        """Admins with ``users:read``: a key, revoked or not."""
        principal.require_admin("users:read")
        return await self.get(key_id)

    async def page_as(self, principal: Principal, page: PageRequest) -> Page[ApiKey]:
        """Admins with ``users:read``: :meth:`page`."""
        principal.require_admin("users:read")
        return await self.page(page)

    async def revoke_as(self, principal: Principal, key_id: str) -> ApiKey:
        """Admins with ``users:write``: :meth:`revoke`."""
        principal.require_admin("users:write")
        return await self.revoke(key_id)

    # Every request that sends a key ------------------------------------------------------------

    async def verify(self, value: str) -> KeyHolder | None:
        """The holder of the key ``value``: the principal ``key:<id>`` with the key's scopes and
        no role, on the key's plan; ``None`` when the key is unknown or revoked (or not even
        shaped like a key: no lookup then). Records the use behind the request."""
        if not looks_like_api_key(value):
            return None
        digest = secret_digest(value)
        key = await self._cached.get_or_load(
            digest, lambda: self._db.read(lambda tx: self._keys(tx).by_digest(digest)))
        if key is None or not key.is_active or not key.check(value):
            return None
        self._used(key.id)
        return KeyHolder(Principal(subject=key.subject, scopes=key.scopes), key.plan)

    async def settle(self) -> None:
        """Writes the uses not written yet (a shutdown; tests)."""
        while self._writing is not None:
            await asyncio.shield(self._writing)

    def _used(self, key_id: str) -> None:
        now = datetime.now(UTC)
        last = self._recorded.get(key_id)
        if last is not None and (now - last).total_seconds() < self._every:
            return
        if len(self._recorded) >= 10_000:  # bounded: forgetting costs one early write each
            self._recorded.clear()
        self._recorded[key_id] = now
        self._pending[key_id] = now
        if self._writing is None:
            self._writing = asyncio.ensure_future(self._write_behind())

    async def _write_behind(self) -> None:
        try:
            while self._pending:
                used, self._pending = self._pending, {}
                await self._touch(used)
        finally:
            self._writing = None

    async def _touch(self, used: dict[str, datetime]) -> None:
        try:
            await self._db.write(lambda tx: self._keys(tx).touch(used))
        except Exception:  # a lost last-use time must never fail a request, nor stop the next
            log.warning("could not record the last use of %d API keys", len(used),
                        exc_info=True)

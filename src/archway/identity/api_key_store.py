"""API keys' persistence: the repository over ``store.api_keys``; a key is only ever stored as
its digest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection, Row

from archway.identity.domain import ApiKey
from archway.identity.store import api_keys, keyed_page
from archway.kernel.clock import as_utc
from archway.kernel.pagination import Page, PageRequest


def _api_key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id, digest=row.digest, consumer=row.consumer, plan=row.plan,
        scopes=frozenset(row.scopes.split()), created_at=as_utc(row.created_at),
        revoked_at=as_utc(row.revoked_at) if row.revoked_at is not None else None,
        last_used_at=as_utc(row.last_used_at) if row.last_used_at is not None else None)


_KEY_BY_DIGEST = select(api_keys).where(api_keys.c.digest == bindparam("digest"))


class ApiKeyRepository:
    """API keys in one unit of work; a key is only ever stored as its digest."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, key_id: str) -> ApiKey | None:
        row = self._conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        return _api_key(row) if row else None

    def by_digest(self, digest: str) -> ApiKey | None:
        row = self._conn.execute(_KEY_BY_DIGEST, {"digest": digest}).first()
        return _api_key(row) if row else None

    def add(self, key: ApiKey) -> None:
        self._conn.execute(insert(api_keys).values(
            id=key.id, digest=key.digest, consumer=key.consumer, plan=key.plan,
            scopes=" ".join(sorted(key.scopes)), created_at=key.created_at,
            revoked_at=key.revoked_at, last_used_at=key.last_used_at))

    def revoke(self, key: ApiKey) -> bool:
        """Marks ``key`` revoked unless it already was; whether this call revoked it."""
        return bool(self._conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key.id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=key.revoked_at)).rowcount)

    def touch(self, used: dict[str, datetime]) -> int:
        """Records each key's last use, never moving one back in time; how many changed."""
        changed = 0
        for key_id, at in used.items():
            changed += int(self._conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id,
                       (api_keys.c.last_used_at.is_(None)) | (api_keys.c.last_used_at < at))
                .values(last_used_at=at)).rowcount)
        return changed

    def page(self, page: PageRequest) -> Page[ApiKey]:
        """A page by id (UUIDv7: creation order): offset (v1) or after a key id (v2)."""
        return keyed_page(self._conn, api_keys.c.id, page, _api_key, lambda key: key.id)

"""Signing keys and access tokens: ES256 keys in the database, rotated, published as JWKS.

The newest key signs; older keys stay published until every token they signed has expired
(``retire_after``). Each process keeps the keys in memory and re-reads them every few seconds,
so a key rotated by ``archway keys rotate`` in another process is used and published within
seconds, and an unknown ``kid`` triggers an immediate re-read through the verifier.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from archway.identity.store import signing_keys
from archway.kernel.db import Database
from archway.kernel.ids import new_id

MAX_TOKEN_TTL_SECONDS = 86_400
RETIREMENT_GRACE_SECONDS = 60


@dataclass(frozen=True, slots=True)
class _Keys:
    signing: ECKey | None
    published: dict[str, ECKey]
    loaded_at: float


class KeyRing:
    """The process's view of the signing keys; implements the kernel's ``KeySource``."""

    def __init__(self, db: Database, *, refresh_seconds: float = 5.0) -> None:
        self._db = db
        self._refresh_seconds = refresh_seconds
        self._keys = _Keys(None, {}, 0.0)
        self._lock = asyncio.Lock()

    async def public_keys(self, *, refresh: bool = False) -> Mapping[str, ECKey]:
        return (await self._current(refresh)).published

    async def signing_key(self) -> ECKey:
        keys = await self._current(False)
        if keys.signing is None:
            await self.ensure_key()
            keys = await self._current(True)
        assert keys.signing is not None
        return keys.signing

    async def jwks(self) -> dict[str, list[dict[str, object]]]:
        keys = await self.public_keys()
        return {"keys": [
            {**key.as_dict(private=False), "use": "sig", "alg": "ES256"} for key in keys.values()
        ]}

    async def ensure_key(self) -> None:
        """Create the first signing key if there is none."""
        def create_if_missing(conn: Connection) -> None:
            active = conn.execute(
                select(signing_keys.c.kid).where(signing_keys.c.retire_after.is_(None))
            ).first()
            if active is None:
                conn.execute(insert(signing_keys).values(**_new_key_row()))

        await self._db.write(create_if_missing)
        await self._current(True)

    async def rotate(self) -> str:
        """Sign with a new key from now on; keep the old ones published until their tokens
        expire."""
        row = _new_key_row()
        retire_after = int(time.time()) + MAX_TOKEN_TTL_SECONDS + RETIREMENT_GRACE_SECONDS
        def replace_active(conn: Connection) -> None:
            conn.execute(update(signing_keys).where(
                signing_keys.c.retire_after.is_(None)).values(retire_after=retire_after))
            conn.execute(insert(signing_keys).values(**row))

        await self._db.write(replace_active)
        await self._current(True)
        return str(row["kid"])

    async def _current(self, refresh: bool) -> _Keys:
        keys = self._keys
        if not refresh and time.monotonic() - keys.loaded_at < self._refresh_seconds:
            return keys
        async with self._lock:
            if not refresh and time.monotonic() - self._keys.loaded_at < self._refresh_seconds:
                return self._keys
            self._keys = await self._load()
            return self._keys

    async def _load(self) -> _Keys:
        now = int(time.time())
        rows = await self._db.read(lambda conn: conn.execute(
            select(signing_keys).order_by(signing_keys.c.created_at, signing_keys.c.kid)
        ).all())
        published: dict[str, ECKey] = {}
        signing: ECKey | None = None
        for row in rows:
            if row.retire_after is not None and row.retire_after <= now:
                continue
            key = ECKey.import_key(row.private_pem, {"kid": row.kid})
            published[row.kid] = key
            if row.retire_after is None:
                signing = key
        return _Keys(signing, published, time.monotonic())


def _new_key_row() -> dict[str, object]:
    kid = new_id()
    key = ECKey.generate_key("P-256", parameters={"kid": kid})
    return {
        "kid": kid, "private_pem": key.as_pem(private=True).decode(),
        "created_at": int(time.time()), "retire_after": None,
    }


class TokenIssuer:
    """Issues RFC 9068 JWT access tokens signed with the key ring's current key."""

    def __init__(self, keys: KeyRing, *, issuer: str, audience: str, default_ttl: int) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self.default_ttl = default_ttl

    async def issue(
        self,
        *,
        subject: str,
        scopes: Iterable[str],
        roles: Iterable[str],
        client_id: str,
        ttl_seconds: int | None = None,
    ) -> str:
        ttl = min(ttl_seconds or self.default_ttl, MAX_TOKEN_TTL_SECONDS)
        key = await self._keys.signing_key()
        now = int(time.time())
        claims = {
            "iss": self._issuer, "aud": self._audience, "sub": subject,
            "client_id": client_id, "scope": " ".join(sorted(set(scopes))),
            "roles": sorted(set(roles)), "iat": now, "nbf": now, "exp": now + ttl,
            "jti": new_id(),
        }
        header = {"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}
        return jwt.encode(header, claims, key, algorithms=["ES256"])

"""Identity's public port: what other contexts may ask of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from archway.identity.store import UserRepository
from archway.kernel.db import Database


@dataclass(frozen=True, slots=True)
class UserSummary:
    id: str
    email: str
    name: str


class IdentityClient(Protocol):
    async def get_user_summary(self, user_id: str) -> UserSummary | None: ...


class InProcessIdentityClient:
    """The monolith's implementation: a direct call, no network."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_user_summary(self, user_id: str) -> UserSummary | None:
        user = await self._db.read(lambda conn: UserRepository(conn).get(user_id))
        return UserSummary(user.id, user.email, user.name) if user else None

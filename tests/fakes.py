"""In-memory fakes of Archway's ports, honest enough to run the same tests as the real ones.

``FakeUnitsOfWork`` hands each unit of work its in-memory state and restores a snapshot when
a write raises, like a rolled-back transaction; repositories read and change that state.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from archway.identity.domain import User
from archway.kernel.errors import Conflict
from archway.kernel.pagination import Page, PageRequest

T = TypeVar("T")


@dataclass
class FakeState:
    users: dict[str, User] = field(default_factory=dict)
    committed: int = 0


class FakeUnitsOfWork:
    def __init__(self) -> None:
        self.state = FakeState()

    async def read(self, work: Callable[[Any], T]) -> T:
        return work(self.state)

    async def write(self, work: Callable[[Any], T]) -> T:
        snapshot = copy.deepcopy(self.state)
        try:
            result = work(self.state)
        except BaseException:
            self.state.__dict__.update(snapshot.__dict__)
            raise
        self.state.committed += 1
        return result


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

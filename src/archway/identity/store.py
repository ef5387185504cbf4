"""Identity persistence: SQLAlchemy Core tables and row ↔ domain mapping."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from archway.identity.domain import User
from archway.kernel.clock import as_utc
from archway.kernel.errors import AlreadyExists
from archway.kernel.pagination import Page, PageRequest

identity_metadata = MetaData()

users = Table(
    "identity_users",
    identity_metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("roles", String(100), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

signing_keys = Table(
    "identity_signing_keys",
    identity_metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_pem", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("retire_after", BigInteger, nullable=True),
)


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id, email=row.email, name=row.name, password_hash=row.password_hash,
        roles=frozenset(row.roles.split(",")) if row.roles else frozenset(),
        created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at),
    )


def _values(user: User) -> dict[str, object]:
    return {
        "id": user.id, "email": user.email, "name": user.name,
        "password_hash": user.password_hash, "roles": ",".join(sorted(user.roles)),
        "created_at": user.created_at, "updated_at": user.updated_at,
    }


# Hot statements are built once: building a SELECT costs more than running it on SQLite.
_BY_ID = select(users).where(users.c.id == bindparam("user_id"))
_BY_EMAIL = select(users).where(users.c.email == bindparam("email"))


class UserRepository:
    """Users in one unit of work (see ``archway.kernel.db``); emails are stored normalized."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, user_id: str) -> User | None:
        row = self._conn.execute(_BY_ID, {"user_id": user_id}).first()
        return _user(row) if row else None

    def by_email(self, email: str) -> User | None:
        row = self._conn.execute(_BY_EMAIL, {"email": email.strip().lower()}).first()
        return _user(row) if row else None

    def add(self, user: User) -> None:
        try:
            self._conn.execute(insert(users).values(**_values(user)))
        except IntegrityError as exc:
            raise AlreadyExists("A user with this email already exists.") from exc

    def save(self, user: User) -> None:
        values = _values(user)
        values.pop("id")
        try:
            self._conn.execute(update(users).where(users.c.id == user.id).values(**values))
        except IntegrityError as exc:
            raise AlreadyExists("A user with this email already exists.") from exc

    def remove(self, user_id: str) -> bool:
        return bool(self._conn.execute(delete(users).where(users.c.id == user_id)).rowcount)

    def list(self, page: PageRequest) -> Page[User]:
        query = select(users).order_by(users.c.id).limit(page.limit + 1)
        if page.wants_cursor:
            if page.after is not None:
                query = query.where(users.c.id > page.after[0])
            rows = self._conn.execute(query).all()
            more = len(rows) > page.limit
            items = [_user(row) for row in rows[: page.limit]]
            return Page(items, next_after=(items[-1].id,) if more and items else None)
        total = self._conn.execute(select(func.count()).select_from(users)).scalar_one()
        rows = self._conn.execute(query.limit(page.limit).offset(page.offset)).all()
        return Page([_user(row) for row in rows], total=total)

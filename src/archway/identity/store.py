"""Identity persistence: SQLAlchemy Core tables and row ↔ domain mapping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

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

from archway.identity.domain import AuthorizationCode, OAuthClient, RefreshToken, User
from archway.kernel.clock import as_utc
from archway.kernel.errors import AlreadyExists
from archway.kernel.pagination import Page, PageRequest

T = TypeVar("T")

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

oauth_clients = Table(
    "identity_oauth_clients",
    identity_metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("secret_digest", String(64), nullable=True),  # SHA-256, hex; none: a public client
    Column("redirect_uris", Text, nullable=False),  # space-separated (a URI has no space)
    Column("grant_types", String(200), nullable=False),
    Column("scopes", String(500), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

refresh_tokens = Table(
    "identity_refresh_tokens",
    identity_metadata,
    Column("id", String(36), primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),  # SHA-256 of the token, hex
    Column("family_id", String(36), nullable=False, index=True),
    Column("client_id", String(64), nullable=False),
    Column("user_id", String(36), nullable=False, index=True),
    Column("scopes", String(500), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

authorization_codes = Table(
    "identity_authorization_codes",
    identity_metadata,
    Column("digest", String(64), primary_key=True),  # SHA-256 of the code, hex
    Column("client_id", String(64), nullable=False),
    Column("user_id", String(36), nullable=False),
    Column("redirect_uri", Text, nullable=True),
    Column("scopes", String(500), nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("code_challenge_method", String(10), nullable=False),
    Column("family_id", String(36), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
)

revoked_access_tokens = Table(
    "identity_revoked_access_tokens",
    identity_metadata,
    Column("token_id", String(64), primary_key=True),  # the JWT's jti
    Column("expires_at", DateTime(timezone=True), nullable=False),  # kept until then
)

api_keys = Table(
    "identity_api_keys",
    identity_metadata,
    Column("id", String(36), primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),  # SHA-256 of the key, hex
    Column("consumer", String(100), nullable=False),
    Column("plan", String(20), nullable=False),
    Column("scopes", String(500), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
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


def _client(row: Row[Any]) -> OAuthClient:
    return OAuthClient(
        client_id=row.client_id, name=row.name, secret_digest=row.secret_digest,
        redirect_uris=tuple(row.redirect_uris.split()),
        grant_types=frozenset(row.grant_types.split()), scopes=frozenset(row.scopes.split()),
        created_at=as_utc(row.created_at),
        revoked_at=as_utc(row.revoked_at) if row.revoked_at is not None else None,
    )


_CLIENT_BY_ID = select(oauth_clients).where(oauth_clients.c.client_id == bindparam("client_id"))


class ClientRepository:
    """OAuth clients in one unit of work; a secret is only ever stored as its digest."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, client_id: str) -> OAuthClient | None:
        row = self._conn.execute(_CLIENT_BY_ID, {"client_id": client_id}).first()
        return _client(row) if row else None

    def add(self, client: OAuthClient) -> None:
        try:
            self._conn.execute(insert(oauth_clients).values(
                client_id=client.client_id, name=client.name,
                secret_digest=client.secret_digest,
                redirect_uris=" ".join(client.redirect_uris),
                grant_types=" ".join(sorted(client.grant_types)),
                scopes=" ".join(sorted(client.scopes)),
                created_at=client.created_at, revoked_at=client.revoked_at))
        except IntegrityError as exc:
            raise AlreadyExists(f"A client with id {client.client_id} already exists.") from exc

    def save(self, client: OAuthClient) -> bool:
        """Writes ``client``'s name, redirect URIs and secret unless it was revoked meanwhile;
        whether it did."""
        return bool(self._conn.execute(
            update(oauth_clients)
            .where(oauth_clients.c.client_id == client.client_id,
                   oauth_clients.c.revoked_at.is_(None))
            .values(name=client.name, redirect_uris=" ".join(client.redirect_uris),
                    secret_digest=client.secret_digest)).rowcount)

    def revoke(self, client: OAuthClient) -> bool:
        """Marks ``client`` revoked unless it already was; whether this call revoked it."""
        return bool(self._conn.execute(
            update(oauth_clients)
            .where(oauth_clients.c.client_id == client.client_id,
                   oauth_clients.c.revoked_at.is_(None))
            .values(revoked_at=client.revoked_at)).rowcount)

    def list(self) -> list[OAuthClient]:
        rows = self._conn.execute(select(oauth_clients).order_by(oauth_clients.c.client_id))
        return [_client(row) for row in rows]

    def page(self, page: PageRequest) -> Page[OAuthClient]:
        """A page by id: offset (v1) or after a client id (v2)."""
        return keyed_page(self._conn, oauth_clients.c.client_id, page, _client,
                          lambda client: client.client_id)


def keyed_page(
    conn: Connection, key: Column[Any], page: PageRequest, item: Callable[[Row[Any]], T],
    key_of: Callable[[T], str],
) -> Page[T]:
    """A page of ``key``'s table in the order of that unique column: offset and a total
    (v1), or the rows after a key (v2's cursor, ``key_of`` the last item's)."""
    query = select(key.table).order_by(key)
    if page.wants_cursor:
        if page.after is not None:
            query = query.where(key > page.after[0])
        rows = conn.execute(query.limit(page.limit + 1)).all()
        items = [item(row) for row in rows[: page.limit]]
        more = len(rows) > page.limit
        return Page(items, next_after=(key_of(items[-1]),) if more and items else None)
    total = conn.execute(select(func.count()).select_from(key.table)).scalar_one()
    rows = conn.execute(query.limit(page.limit).offset(page.offset)).all()
    return Page([item(row) for row in rows], total=total)


def _refresh_token(row: Row[Any]) -> RefreshToken:
    return RefreshToken(
        id=row.id, digest=row.digest, family_id=row.family_id, client_id=row.client_id,
        user_id=row.user_id, scopes=frozenset(row.scopes.split()),
        issued_at=as_utc(row.issued_at), expires_at=as_utc(row.expires_at),
        used_at=as_utc(row.used_at) if row.used_at is not None else None,
        revoked_at=as_utc(row.revoked_at) if row.revoked_at is not None else None,
    )


_REFRESH_BY_DIGEST = select(refresh_tokens).where(refresh_tokens.c.digest == bindparam("digest"))


class RefreshTokenRepository:
    """Refresh tokens in one unit of work, by their digest; families revoked as one."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def by_digest(self, digest: str) -> RefreshToken | None:
        row = self._conn.execute(_REFRESH_BY_DIGEST, {"digest": digest}).first()
        return _refresh_token(row) if row else None

    def add(self, token: RefreshToken) -> None:
        self._conn.execute(insert(refresh_tokens).values(
            id=token.id, digest=token.digest, family_id=token.family_id,
            client_id=token.client_id, user_id=token.user_id,
            scopes=" ".join(sorted(token.scopes)), issued_at=token.issued_at,
            expires_at=token.expires_at, used_at=token.used_at, revoked_at=token.revoked_at))

    def claim(self, token_id: str, at: datetime) -> bool:
        """Marks the token used unless it already was or is revoked: whether this call did
        (of two concurrent uses, exactly one claims it)."""
        return bool(self._conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.id == token_id, refresh_tokens.c.used_at.is_(None),
                   refresh_tokens.c.revoked_at.is_(None))
            .values(used_at=at)).rowcount)

    def revoke_family(self, family_id: str, at: datetime) -> int:
        return int(self._conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)).rowcount)

    def revoke_user(self, user_id: str, at: datetime) -> int:
        return int(self._conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)).rowcount)


def _code(row: Row[Any]) -> AuthorizationCode:
    return AuthorizationCode(
        digest=row.digest, client_id=row.client_id, user_id=row.user_id,
        redirect_uri=row.redirect_uri, scopes=frozenset(row.scopes.split()),
        code_challenge=row.code_challenge, code_challenge_method=row.code_challenge_method,
        family_id=row.family_id, expires_at=as_utc(row.expires_at),
        used_at=as_utc(row.used_at) if row.used_at is not None else None)


class AuthorizationCodeRepository:
    """Authorization codes in one unit of work, by their digest; used ones are kept (marked)
    until they expire, so that a second use is recognised as one."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def by_digest(self, digest: str) -> AuthorizationCode | None:
        row = self._conn.execute(
            select(authorization_codes).where(authorization_codes.c.digest == digest)).first()
        return _code(row) if row else None

    def add(self, code: AuthorizationCode) -> None:
        self._conn.execute(insert(authorization_codes).values(
            digest=code.digest, client_id=code.client_id, user_id=code.user_id,
            redirect_uri=code.redirect_uri, scopes=" ".join(sorted(code.scopes)),
            code_challenge=code.code_challenge,
            code_challenge_method=code.code_challenge_method, family_id=code.family_id,
            expires_at=code.expires_at, used_at=code.used_at))

    def claim(self, digest: str, at: datetime) -> bool:
        """Marks the code used unless it already was or has expired: whether this call did."""
        return bool(self._conn.execute(
            update(authorization_codes)
            .where(authorization_codes.c.digest == digest,
                   authorization_codes.c.used_at.is_(None),
                   authorization_codes.c.expires_at > at)
            .values(used_at=at)).rowcount)

    def remove_expired(self, before: datetime) -> int:
        return int(self._conn.execute(delete(authorization_codes).where(
            authorization_codes.c.expires_at < before)).rowcount)


class RevokedTokenRepository:
    """Access tokens revoked before they expire, by ``jti``, kept until they would have."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, token_id: str, expires_at: datetime) -> None:
        try:
            self._conn.execute(insert(revoked_access_tokens).values(
                token_id=token_id, expires_at=expires_at))
        except IntegrityError as exc:
            raise AlreadyExists(f"The token {token_id} is already revoked.") from exc

    def unexpired(self, now: datetime) -> list[tuple[str, datetime]]:
        rows = self._conn.execute(
            select(revoked_access_tokens.c.token_id, revoked_access_tokens.c.expires_at)
            .where(revoked_access_tokens.c.expires_at > now))
        return [(row.token_id, as_utc(row.expires_at)) for row in rows]

    def remove_expired(self, before: datetime) -> int:
        return int(self._conn.execute(delete(revoked_access_tokens).where(
            revoked_access_tokens.c.expires_at < before)).rowcount)

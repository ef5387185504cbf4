"""Users, OAuth clients and their invariants: pure Python, no I/O."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from archway.kernel.auth.principal import SCOPES
from archway.kernel.errors import FieldError, InvalidInput
from archway.kernel.ids import new_id
from archway.kernel.text import has_control_character

ROLES = frozenset({"customer", "admin"})
EMAIL_MAX = 254
EMAIL_PATTERN = (
    r"^[^@\s\x00-\x1f\x7f-\x9f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")
"""An address as the shop accepts it (also the OpenAPI ``pattern``): no control character."""
_EMAIL = re.compile(EMAIL_PATTERN)
PASSWORD_MIN, PASSWORD_MAX = 8, 128
NAME_MAX = 100
_NO_CONTROL = "must not contain control characters"


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    name: str
    password_hash: str
    roles: frozenset[str] = field(default_factory=lambda: frozenset({"customer"}))
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def changed(self, **changes: object) -> User:
        # field names and types are the caller's: dataclasses.replace checks names at run time:
        return replace(self, updated_at=datetime.now(UTC), **changes)  # type: ignore[arg-type]


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively here, as every mail provider in practice treats them."""
    return email.strip().lower()


def check_registration(email: str, password: str, name: str) -> list[FieldError]:
    return [*check_email(email), *check_password(password), *check_name(name)]


def check_email(email: str) -> list[FieldError]:
    # fullmatch: `$` alone would let a trailing newline through
    if len(email) > EMAIL_MAX or not _EMAIL.fullmatch(email):
        return [FieldError(("email",), "must be an email address such as ada@example.com")]
    return []


def check_password(password: str) -> list[FieldError]:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return [FieldError(
            ("password",), f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long")]
    if has_control_character(password):
        return [FieldError(("password",), _NO_CONTROL)]
    return []


def check_name(name: str) -> list[FieldError]:
    if not name.strip() or len(name) > NAME_MAX:
        return [FieldError(("name",), f"must be 1 to {NAME_MAX} characters, not only spaces")]
    if has_control_character(name):
        return [FieldError(("name",), _NO_CONTROL)]
    return []


def raise_if_any(errors: list[FieldError]) -> None:
    if errors:
        raise InvalidInput(errors[0].detail if len(errors) == 1 else None, errors)


def new_user(email: str, name: str, password_hash: str, roles: frozenset[str]) -> User:
    unknown = roles - ROLES
    if unknown:
        raise InvalidInput.field("roles", f"unknown roles: {', '.join(sorted(unknown))}")
    return User(new_id(), normalize_email(email), name.strip(), password_hash, roles)


# OAuth clients -------------------------------------------------------------------------------

GRANT_TYPES = frozenset({"authorization_code", "client_credentials", "refresh_token"})
"""The grants a client may be allowed (what the token endpoint serves is in oauth.py)."""
CLIENT_ID_MIN, CLIENT_ID_MAX = 3, 64
CLIENT_ID_PATTERN = r"^(?:[a-f][a-z0-9-]*[g-z]|[g-z])[a-z0-9-]*$"
"""Lower-case letters, digits and ``-``, starting with a letter, with at least one letter from
``g`` to ``z``: so a client's id is never read as a UUID (all hex digits), a user's id."""
_CLIENT_ID = re.compile(CLIENT_ID_PATTERN)
REDIRECT_URI_MAX = 2000
REDIRECTS_MAX = 10
REDIRECT_URI_PATTERN = (
    r"^https?://[^\s/?#@\[\]\x00-\x1f\x7f-\x9f]+(?:[/?][^\s#\x00-\x1f\x7f-\x9f]*)?$")
"""An absolute http(s) URI with a host and no fragment (RFC 6749 §3.1.2), no space and no
control character; matched exactly when used."""
_REDIRECT_URI = re.compile(REDIRECT_URI_PATTERN)
CLIENT_NAME_MAX = 100
SECRET_BYTES = 32
"""Client secrets carry 256 bits of randomness (``secrets.token_urlsafe(32)``: 43 characters)."""
MIN_SECRET_LENGTH = 43
MACHINE_SCOPES = frozenset({"reports:read"})
"""What a token a client gets for itself (``client_credentials``) may carry: no scope that acts
on a user's own resources (the token's subject is the client, which is no user)."""


def is_valid_client_id(client_id: str) -> bool:
    """:data:`CLIENT_ID_PATTERN`, 3–64 characters: never a UUID, so a client's id can never be
    taken for a user's in a token's ``sub``."""
    return (CLIENT_ID_MIN <= len(client_id) <= CLIENT_ID_MAX
            and bool(_CLIENT_ID.fullmatch(client_id)))


def secret_digest(secret: str) -> str:
    """The SHA-256 digest a secret is stored as. A secret is machine-generated with 256 bits of
    randomness, so a fast digest cannot be brute-forced; a slow password hash (argon2id) is for
    the low-entropy passwords people choose."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_client_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """A registered OAuth 2.0 client. Confidential ones have a secret, stored as its digest
    only; public ones (a browser page, a native app) have none and must use PKCE."""

    client_id: str
    name: str
    secret_digest: str | None
    redirect_uris: tuple[str, ...] = ()
    grant_types: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    revoked_at: datetime | None = None

    @property
    def is_public(self) -> bool:
        return self.secret_digest is None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def check_secret(self, secret: str) -> bool:
        """Constant-time comparison of ``secret``'s digest with the stored one."""
        if self.secret_digest is None:
            return False
        return hmac.compare_digest(secret_digest(secret), self.secret_digest)

    def revoked(self) -> OAuthClient:
        return replace(self, revoked_at=datetime.now(UTC))

    def changed(
        self, *, name: str | None = None, redirect_uris: tuple[str, ...] | None = None
    ) -> OAuthClient:
        """This client renamed or redirecting elsewhere, under the rules of registering one."""
        errors = check_name(name) if name is not None else []
        uris = self.redirect_uris if redirect_uris is None else redirect_uris
        errors += _check_redirect_uris(uris, self.grant_types)
        raise_if_any(errors)
        return replace(self, name=self.name if name is None else name.strip(),
                       redirect_uris=tuple(dict.fromkeys(uris)))

    def with_new_secret(self) -> tuple[OAuthClient, str]:
        """This (confidential) client with a new secret, shown this once; the old one no
        longer authenticates it."""
        secret = new_client_secret()
        return replace(self, secret_digest=secret_digest(secret)), secret


def new_client(
    client_id: str,
    name: str,
    *,
    public: bool,
    grant_types: frozenset[str],
    scopes: frozenset[str],
    redirect_uris: tuple[str, ...] = (),
    secret: str | None = None,
) -> tuple[OAuthClient, str | None]:
    """A client and its secret (``None`` for a public client), the one time it is shown.
    ``secret`` is for the seeded demo client only; anything else gets a generated one."""
    errors: list[FieldError] = []
    if not is_valid_client_id(client_id):
        errors.append(FieldError(("client_id",), "must be 3 to 64 lower-case letters, digits "
                                 "or '-', starting with a letter, with a letter from g to z"))
    errors += check_name(name)
    unknown = grant_types - GRANT_TYPES
    if unknown or not grant_types:
        errors.append(FieldError(("grant_types",), "must be one or more of "
                                 + ", ".join(sorted(GRANT_TYPES))))
    if public and "client_credentials" in grant_types:
        errors.append(FieldError(("grant_types",), "a public client has no secret to get a "
                                 "token for itself with: client_credentials is for "
                                 "confidential clients"))
    if not scopes <= frozenset(SCOPES):
        errors.append(FieldError(("scopes",), "unknown scopes: "
                                 + " ".join(sorted(scopes - frozenset(SCOPES)))))
    errors += _check_redirect_uris(redirect_uris, grant_types)
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        errors.append(FieldError(("secret",), f"must be at least {MIN_SECRET_LENGTH} "
                                 "characters (256 bits of randomness)"))
    raise_if_any(errors)
    shown = None if public else (secret or new_client_secret())
    client = OAuthClient(
        client_id=client_id, name=name.strip(),
        secret_digest=None if shown is None else secret_digest(shown),
        redirect_uris=tuple(dict.fromkeys(redirect_uris)), grant_types=grant_types,
        scopes=scopes)
    return client, shown


def check_client_changes(
    name: str | None, redirect_uris: tuple[str, ...] | None
) -> list[FieldError]:
    """What is wrong with a change of any client (before looking it up)."""
    errors = check_name(name) if name is not None else []
    return errors + _check_redirect_uris(redirect_uris or (), frozenset())


def _check_redirect_uris(uris: tuple[str, ...], grant_types: frozenset[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    if "authorization_code" in grant_types and not uris:
        errors.append(FieldError(("redirect_uris",), "the authorization code grant needs at "
                                 "least one redirect URI"))
    if len(uris) > REDIRECTS_MAX:
        errors.append(FieldError(("redirect_uris",), f"at most {REDIRECTS_MAX}"))
    return errors + [error for uri in uris for error in _check_redirect_uri(uri)]


def _check_redirect_uri(uri: str) -> list[FieldError]:
    if len(uri) > REDIRECT_URI_MAX or not _REDIRECT_URI.fullmatch(uri):
        return [FieldError(("redirect_uris",), "not an absolute http(s) URI with a host and "
                           f"without a fragment: {uri[:100]!r}")]
    return []


# Refresh tokens ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """One refresh token of a grant's family. The token itself (256 bits of randomness) is
    given to the client once and stored as its SHA-256 digest. Every use rotates it: the used
    token is marked ``used_at`` and a new one joins the family; a used token presented again
    means one of the two was stolen, so the whole family is revoked."""

    id: str
    digest: str
    family_id: str
    client_id: str
    user_id: str
    scopes: frozenset[str]
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_usable(self, now: datetime) -> bool:
        return self.used_at is None and self.revoked_at is None and now < self.expires_at


def new_refresh_token(
    client_id: str, user_id: str, scopes: frozenset[str], ttl_seconds: int,
    *, family_id: str | None = None, token: str | None = None,
) -> tuple[RefreshToken, str]:
    """A refresh token (a new family's first, or the next of ``family_id``) and its value."""
    value = token or secrets.token_urlsafe(SECRET_BYTES)
    now = datetime.now(UTC)
    token_id = new_id()
    return RefreshToken(
        id=token_id, digest=secret_digest(value), family_id=family_id or token_id,
        client_id=client_id, user_id=user_id, scopes=scopes, issued_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds)), value


def new_refresh_value() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


# Authorization codes -------------------------------------------------------------------------

AUTHORIZATION_CODE_TTL_SECONDS = 60


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    """An authorization code (RFC 6749 §4.1), stored as its SHA-256 digest: single-use, for 60 s,
    bound to its client, its redirect URI (as the request gave it) and its PKCE challenge
    (S256). ``family_id`` names the refresh tokens it will be exchanged for, so that a second
    use can revoke them (§4.1.2)."""

    digest: str
    client_id: str
    user_id: str
    redirect_uri: str | None
    scopes: frozenset[str]
    code_challenge: str
    code_challenge_method: str
    family_id: str
    expires_at: datetime
    used_at: datetime | None = None


def new_authorization_code(
    value: str, *, client_id: str, user_id: str, redirect_uri: str | None,
    scopes: frozenset[str], code_challenge: str, code_challenge_method: str,
) -> AuthorizationCode:
    return AuthorizationCode(
        digest=secret_digest(value), client_id=client_id, user_id=user_id,
        redirect_uri=redirect_uri, scopes=scopes, code_challenge=code_challenge,
        code_challenge_method=code_challenge_method, family_id=new_id(),
        expires_at=datetime.now(UTC) + timedelta(seconds=AUTHORIZATION_CODE_TTL_SECONDS))


# API keys ------------------------------------------------------------------------------------

API_KEY_PREFIX = "ak_"
"""Every key starts so (``ak_`` and 43 characters of ``secrets.token_urlsafe(32)``): a leaked
one is recognisable to a secret scanner, and never taken for a JWT."""
API_KEY_LENGTH = len(API_KEY_PREFIX) + MIN_SECRET_LENGTH
API_KEY_PLANS = ("default", "partner")
"""The rate-limit plans a key may be on (``kernel.ratelimit.Plan`` less ``anonymous``)."""
LAST_USED_EVERY_SECONDS = 60
"""A key's ``last_used_at`` is written at most this often: it is a day-to-day answer to "is this
key still used?", not an audit log, and a write per request would cost more than the request."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A machine consumer's key (``X-API-Key``). The key itself is shown once, when created;
    only its SHA-256 digest is stored. It acts as ``key:<id>`` with its scopes (machine scopes
    only: a key is nobody's account) and is rate-limited by its plan."""

    id: str
    digest: str
    consumer: str
    plan: str
    scopes: frozenset[str]
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def subject(self) -> str:
        """Who the key acts as: ``key:<id>`` (never a user's id nor a client's)."""
        return f"key:{self.id}"

    def check(self, value: str) -> bool:
        """Constant-time comparison of ``value``'s digest with the stored one."""
        return hmac.compare_digest(secret_digest(value), self.digest)

    def revoked(self) -> ApiKey:
        return replace(self, revoked_at=datetime.now(UTC))


def looks_like_api_key(value: str) -> bool:
    """Whether ``value`` has a key's shape: anything else is refused without a lookup."""
    return (len(value) == API_KEY_LENGTH and value.startswith(API_KEY_PREFIX)
            and all(c.isascii() and (c.isalnum() or c in "-_") for c in value))


def new_api_key(consumer: str, plan: str, scopes: frozenset[str]) -> tuple[ApiKey, str]:
    """A key for ``consumer`` and its value, the one time it is shown."""
    errors = [FieldError(("consumer",), error.detail) for error in check_name(consumer)]
    if plan not in API_KEY_PLANS:
        errors.append(FieldError(("plan",), "must be one of " + ", ".join(API_KEY_PLANS)))
    if not scopes <= MACHINE_SCOPES:
        errors.append(FieldError(("scopes",), "a key may only carry scopes that act on no "
                                 "user's own resources: " + " ".join(sorted(MACHINE_SCOPES))))
    raise_if_any(errors)
    value = API_KEY_PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    return ApiKey(id=new_id(), digest=secret_digest(value), consumer=consumer.strip(),
                  plan=plan, scopes=scopes), value

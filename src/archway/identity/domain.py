"""Users and their invariants: pure Python, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

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

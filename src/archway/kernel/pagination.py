"""Pagination: offset pages (API v1) and opaque keyset cursors (API v2).

A cursor encodes the sort key and id of the last row returned, so the next page is an index
seek rather than an ``OFFSET`` scan, and rows inserted meanwhile never shift a page.

A cursor comes back from the client, so nothing in it is trusted: :func:`decode_cursor` takes
only the shape this API writes, and each key is checked for what it must be before it reaches
a query (:func:`cursor_id`, :func:`cursor_integer`, :func:`cursor_text`, :func:`cursor_time`);
anything else is a 422 on ``cursor``, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson

from archway.kernel.errors import InvalidInput
from archway.kernel.ids import is_valid_id

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 1_000_000
MAX_CURSOR_LENGTH = 512
_BIGINT = 2**63 - 1
_ID_LENGTH = 36


@dataclass(frozen=True, slots=True)
class PageRequest:
    """``offset`` pages count a total; ``cursor`` pages (``after`` decoded) do not."""

    limit: int = DEFAULT_LIMIT
    offset: int | None = None
    after: tuple[Any, ...] | None = None

    @property
    def wants_cursor(self) -> bool:
        return self.offset is None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int | None = None
    next_after: tuple[Any, ...] | None = None


def encode_cursor(values: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).rstrip(b"=").decode()


def decode_cursor(cursor: str, arity: int) -> tuple[Any, ...]:
    """Decode a cursor from :func:`encode_cursor`: ``arity`` strings or integers; anything else
    is a 422 on ``cursor``. Each key still needs its own check (the ``cursor_*`` functions)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError, orjson.JSONDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != arity:
        raise bad_cursor()
    if not all(isinstance(value, str | int) and not isinstance(value, bool) for value in values):
        raise bad_cursor()
    return tuple(values)


def bad_cursor() -> InvalidInput:
    return InvalidInput.parameter("cursor", "is not a cursor this API returned")


def cursor_id(value: object) -> str:
    """A row id (a UUID in its canonical 36-character form)."""
    if not isinstance(value, str) or len(value) != _ID_LENGTH or not is_valid_id(value):
        raise bad_cursor()
    return value


def cursor_integer(value: object) -> int:
    """An integer key that a BIGINT column can hold."""
    if isinstance(value, bool) or not isinstance(value, int) or not -_BIGINT <= value <= _BIGINT:
        raise bad_cursor()
    return value


def cursor_text(value: object) -> str:
    """A text key: no control character (no stored text has one; PostgreSQL refuses NUL)."""
    if not isinstance(value, str) or any(
        unicodedata.category(char) == "Cc" for char in value
    ):
        raise bad_cursor()
    return value


def cursor_time(value: object) -> datetime:
    """A time as :meth:`datetime.isoformat` writes it (nothing else parses to the same text),
    as an aware UTC datetime that every store holds."""
    if not isinstance(value, str):
        raise bad_cursor()
    try:
        moment = datetime.fromisoformat(value)
        if moment.isoformat() != value:
            raise bad_cursor()
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # e.g. 9999-12-31T23:59-14:00 is past year 9999
        raise bad_cursor() from exc

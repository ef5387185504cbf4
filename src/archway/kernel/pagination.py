"""Pagination: offset pages (API v1) and opaque keyset cursors (API v2).

A cursor encodes the sort key and id of the last row returned, so the next page is an index
seek rather than an ``OFFSET`` scan, and rows inserted meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from archway.kernel.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 1_000_000
MAX_CURSOR_LENGTH = 512


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
    """Decode a cursor from :func:`encode_cursor`; anything else is a 422 on ``cursor``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError, orjson.JSONDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != arity:
        raise InvalidInput.field("cursor", "is not a cursor this API returned")
    if not all(isinstance(value, str | int) and not isinstance(value, bool) for value in values):
        raise InvalidInput.field("cursor", "is not a cursor this API returned")
    return tuple(values)

"""Time: every stored and shown timestamp is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A stored time as aware UTC: SQLite hands back naive datetimes for what was stored as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, the one timestamp form of every API version; microseconds
    are shown only when there are any (``datetime.isoformat``'s rule)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

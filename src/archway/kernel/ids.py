"""Identifiers: UUIDv7 strings, time-ordered, the same in every protocol and event."""

from __future__ import annotations

import uuid

import uuid_utils


def new_id() -> str:
    return str(uuid_utils.uuid7())


def is_valid_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True

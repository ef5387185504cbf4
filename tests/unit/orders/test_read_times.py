"""The read side shows stored times exactly as the API's RFC 3339 form would show the datetime,
whether the driver hands back SQLite's stored text or a datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite

from archway.kernel.clock import rfc3339
from archway.kernel.http.responses import timestamp
from archway.orders.queries import _time

MOMENTS = [
    datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
    datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC),
    datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(1999, 1, 1, 0, 0, 0, 100, tzinfo=UTC),
]


def stored_by_sqlite(moment: datetime) -> str:
    """The text SQLAlchemy writes for a DateTime column on SQLite."""
    processor = sqlite.DATETIME().bind_processor(sqlite.dialect())
    assert processor is not None
    return str(processor(moment))


@pytest.mark.parametrize("moment", MOMENTS)
def test_sqlite_text_is_shown_as_the_datetime_would_be(moment: datetime) -> None:
    assert _time(stored_by_sqlite(moment)) == timestamp(moment) == rfc3339(moment)


@pytest.mark.parametrize("moment", MOMENTS)
def test_datetimes_from_other_drivers_are_shown_in_utc(moment: datetime) -> None:
    assert _time(moment) == timestamp(moment)
    assert _time(moment.astimezone(timezone(timedelta(hours=2)))) == timestamp(moment)
    assert _time(moment.replace(tzinfo=None)) == timestamp(moment)  # naive means UTC


def test_other_text_is_parsed() -> None:
    assert _time("2024-05-01T12:00:00+00:00") == "2024-05-01T12:00:00Z"
    assert _time("2024-05-01 14:00:00.500000+02:00") == "2024-05-01T12:00:00.500000Z"

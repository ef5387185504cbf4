"""Times read from the order view are written exactly as rfc3339 writes them, whatever the
driver hands back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from archway.kernel.clock import rfc3339
from archway.orders.queries import _time

TIMES = [
    datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC),
    datetime(2026, 5, 1, 12, 0, 0, 250000, tzinfo=UTC),
    datetime(2026, 5, 1, 23, 59, 59, 1, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", TIMES)
def test_an_aware_utc_time_as_asyncpg_gives_it(moment: datetime) -> None:
    assert _time(moment) == rfc3339(moment)


@pytest.mark.parametrize("moment", TIMES)
def test_another_offset_or_a_naive_utc_time(moment: datetime) -> None:
    assert _time(moment.astimezone(timezone(timedelta(hours=2)))) == rfc3339(moment)
    assert _time(moment.replace(tzinfo=None)) == rfc3339(moment)


@pytest.mark.parametrize("moment", TIMES)
def test_sqlites_stored_text(moment: datetime) -> None:
    assert _time(moment.replace(tzinfo=None).isoformat(" ", "microseconds")) == rfc3339(moment)


async def test_asyncpg_hands_back_the_utc_object_the_fast_path_expects(
    database_url: str,
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("asyncpg only")
    from archway.kernel.db import Database

    db = Database(database_url)
    try:
        stored = await db.read(lambda conn: conn.exec_driver_sql(
            "SELECT TIMESTAMPTZ '2026-05-01 12:00:00.25+02'").scalar_one())
    finally:
        await db.dispose()
    assert stored.tzinfo is UTC
    assert _time(stored) == "2026-05-01T10:00:00.250000Z"

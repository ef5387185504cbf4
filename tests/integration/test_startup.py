"""Start-up refuses clearly what it cannot run with."""

from __future__ import annotations

from pathlib import Path

import pytest

from archway.config import ConfigurationError, load_settings
from archway.topologies.monolith import create_app


async def test_an_unmigrated_database_stops_start_up_with_the_fix(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    app = create_app(settings)
    with pytest.raises(ConfigurationError, match="archway db migrate"):
        async with app.router.lifespan_context(app):
            pass


def test_bad_settings_name_each_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(database_url="mysql://x", http_port=70000)
    message = str(caught.value)
    assert "ARCHWAY_DATABASE_URL" in message and "ARCHWAY_HTTP_PORT" in message

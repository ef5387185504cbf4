"""A database that refuses connections is a 503 with ``Retry-After`` (the one problem mapping),
for keyed writes and reads alike, never a 500; nothing is kept under the key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.engine import make_url

from archway.config import load_settings
from archway.kernel.db import Database
from archway.kernel.errors import ServiceBusy
from archway.kernel.ids import new_id
from archway.topologies.monolith import Monolith, create_app

NOBODY_LISTENS = "postgresql+asyncpg://postgres@127.0.0.1:1/archway"


async def test_a_refused_connection_is_service_busy() -> None:
    db = Database(NOBODY_LISTENS)
    try:
        for unit in (db.read, db.write):
            try:
                await unit(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())
            except ServiceBusy as refused:
                assert "unavailable" in refused.detail
            else:
                raise AssertionError("the unit ran without a database")
    finally:
        await db.dispose()


async def test_requests_while_the_database_is_down_are_503_problems() -> None:
    settings = load_settings(database_url=NOBODY_LISTENS, environment="test", access_log=False,
                             argon2_time_cost=1, argon2_memory_kib=64)
    app = create_app(settings)  # no lifespan: it would stop at the unreachable database
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            keyed = await http.post("/api/v1/users", headers={"Idempotency-Key": "down-1"}, json={
                "email": "down@example.com", "password": "long enough", "name": "Down"})
            read = await http.get("/api/v1/products")
    finally:
        await app.state.graph.close()
    for response in (keyed, read):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "/problems/service-busy"
    assert app.state.graph.idempotency.answers.admits()  # nothing was queued for the key


@pytest.fixture
async def refused_url(database_url: str, graph: Monolith) -> AsyncIterator[str]:
    """A URL whose role PostgreSQL refuses with "too many connections" (SQLSTATE 53300)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL refuses connections for its own reasons; SQLite has no server")
    role = f"archway_full_{new_id().replace('-', '')[-12:]}"
    await graph.db.write(lambda conn: conn.exec_driver_sql(
        f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0'))
    try:
        yield make_url(database_url).set(username=role, password=None).render_as_string(
            hide_password=False)
    finally:
        await graph.db.write(lambda conn: conn.exec_driver_sql(f'DROP ROLE "{role}"'))


async def test_a_server_with_no_connection_left_is_service_busy_not_a_500(
    refused_url: str,
) -> None:
    db = Database(refused_url)
    try:
        for unit in (db.read, db.write):
            with pytest.raises(ServiceBusy, match="unavailable"):
                await unit(lambda conn: conn.exec_driver_sql("SELECT 1").scalar())
    finally:
        await db.dispose()
    settings = load_settings(database_url=refused_url, environment="test", access_log=False)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            answers = [await http.get("/api/v1/products"), await http.post(
                "/api/v1/users", json={"email": "full@example.com", "password": "long enough",
                                       "name": "Full"})]
    finally:
        await app.state.graph.close()
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "1"

"""The report projections: counted once however often an event comes, rebuilt identically
from the event log (also by `archway projections rebuild`), and read-your-writes waiting."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from archway.cli import app as cli
from archway.config import Settings
from archway.kernel.events.cloudevent import from_json
from archway.orders import consistency
from archway.orders.consistency import ReadYourWrites
from archway.orders.events import ORDER_CONFIRMED
from archway.orders.store import (
    customer_summary,
    order_view,
    orders_inbox,
    orders_outbox,
    product_sales,
)
from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders
from tests.http.test_orders_api import ALICE, BOB, place, settled
from tests.http.test_reports_api import sales_scenario
from tests.ordering import stocked_product

Headers = dict[str, str]
READ_MODELS = (order_view, customer_summary, product_sales)


@pytest.fixture
async def alice(auth_headers: AuthHeaders) -> Headers:
    return await auth_headers(ALICE, "orders:read orders:write")


@pytest.fixture
async def bob(auth_headers: AuthHeaders) -> Headers:
    return await auth_headers(BOB, "orders:read orders:write")


async def snapshot(graph: Monolith) -> dict[str, list[tuple[Any, ...]]]:
    def read(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
        return {table.name: sorted(tuple(row) for row in conn.execute(select(table)))
                for table in READ_MODELS}

    return await graph.db.read(read)


async def test_an_event_delivered_again_is_counted_once(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    await sales_scenario(graph, client, alice, bob)
    before = await snapshot(graph)
    payloads = await graph.db.read(lambda conn: conn.execute(select(orders_outbox.c.payload).where(
        orders_outbox.c.event_type == ORDER_CONFIRMED)).scalars().all())
    for payload in payloads:  # every confirmation, twice more, to every subscriber
        await graph.bus.publish([from_json(payload)])
        await graph.bus.publish([from_json(payload)])
    assert await snapshot(graph) == before
    assert before["orders_customer_summary"]  # the scenario did count something


async def test_a_rebuild_reproduces_every_read_model(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, bob: Headers
) -> None:
    await sales_scenario(graph, client, alice, bob)
    before = await snapshot(graph)
    assert [name for name, _ in await _rebuild_all(graph)] == [
        "orders.order_view", "orders.customer_summary", "orders.product_sales"]
    assert await snapshot(graph) == before


async def test_the_cli_rebuilds_a_running_deployments_read_models(
    graph: Monolith, settings: Settings, client: httpx.AsyncClient, alice: Headers,
    bob: Headers,
) -> None:
    await sales_scenario(graph, client, alice, bob)
    before = await snapshot(graph)

    def wipe(conn: Connection) -> None:  # lost read models, say
        for table in (customer_summary, product_sales):
            conn.execute(table.delete())

    await graph.db.write(wipe)
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["projections", "rebuild"],
        env={"ARCHWAY_DATABASE_URL": settings.database_url})
    assert result.exit_code == 0, result.output
    assert "rebuilt orders.product_sales" in result.output
    assert await snapshot(graph) == before
    # Rebuilt projections recorded what they applied: a redelivery is still skipped.
    payload = await graph.db.read(lambda conn: conn.execute(select(orders_outbox.c.payload).where(
        orders_outbox.c.event_type == ORDER_CONFIRMED).limit(1)).scalar_one())
    await graph.bus.publish([from_json(payload)])
    assert await snapshot(graph) == before


async def test_a_waiter_is_woken_when_a_projection_applies_the_event(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consistency, "RECHECK_SECONDS", 30.0)  # only a wake-up can answer
    coffee = await stocked_product(graph, "COF-Z", on_hand=1)
    order = await place(client, alice, coffee)
    await settled(client, alice, order["id"])
    event_id, position = await graph.db.read(lambda conn: conn.execute(select(
        orders_outbox.c.event_id, orders_outbox.c.position).order_by(
        orders_outbox.c.position.desc()).limit(1)).one())
    waiter = ReadYourWrites(graph.db, ["test.late_projection"], timeout=30.0)
    waiting = asyncio.create_task(waiter.wait(position))
    await asyncio.sleep(0)  # let it check once and start waiting
    assert not waiting.done()
    await graph.db.write(lambda conn: _record(conn, orders_inbox, event_id))
    waiter.notify()
    assert await asyncio.wait_for(waiting, 5.0) is True


def _record(conn: Connection, inbox: Table, event_id: str) -> None:
    conn.execute(insert(inbox).values(
        consumer="test.late_projection", event_id=event_id, event_type=ORDER_CONFIRMED,
        processed_at=datetime.now(UTC)))


async def _rebuild_all(graph: Monolith) -> list[tuple[str, int]]:
    return [(p.consumer, await p.rebuild()) for p in graph.projections]


async def test_a_rebuild_during_live_traffic_loses_and_doubles_nothing(
    graph: Monolith, client: httpx.AsyncClient, alice: Headers, accounts: dict[str, str],
) -> None:
    coffee = await stocked_product(graph, "COF-L", on_hand=50)
    placed = await asyncio.gather(
        *(place(client, alice, coffee, 2) for _ in range(6)),
        *(projection.rebuild() for projection in graph.projections),
        *(projection.rebuild() for projection in graph.projections))
    for order in placed[:6]:
        await settled(client, alice, order["id"])
    assert await graph.relays.settle()
    live = await snapshot(graph)
    assert [row[2:] for row in live["orders_customer_summary"]] == [(6, 6 * 2 * 1999)]
    await _rebuild_all(graph)
    assert await snapshot(graph) == live

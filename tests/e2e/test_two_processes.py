"""End to end: two ``archway serve monolith`` processes on one database, as two replicas.

Both take orders and cancellations at the same time. Only the holder of an outbox's lease
relays it (and so runs its consumers), the other stands by; when the holder is killed
(SIGKILL of its whole process group, as a crashed container), the survivor takes its leases
over once they expire and finishes the work. Whatever process did what, the write side and the
read side must agree exactly: every order settled, stock held once per confirmed order, the
reports equal to the sums of the write model, one catalog answer per order and every event in
every consumer's inbox once.

On SQLite both processes share one file: WAL lets them read at once, and every write starts
with ``BEGIN IMMEDIATE`` under a busy timeout, so they take turns at the file lock.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, make_url

from archway.catalog.store import catalog_inbox, catalog_outbox, stock
from archway.kernel.db import Database
from archway.kernel.tables import outbox_leases
from archway.orders.store import order_lines, orders, orders_inbox, orders_outbox
from tests.e2e.conftest import (
    ARCHWAY,
    _create_postgres_database,
    _psql,
    free_port,
    serving_monolith,
    stop_group,
)

pytestmark = pytest.mark.e2e

LEASE_S = 2  # each server's ARCHWAY_OUTBOX_LEASE_SECONDS: a takeover in seconds, not 15
ORDERS_BEFORE_KILL = 80  # through both processes, 8 at a time
ORDERS_AFTER_KILL = 40  # through the survivor
STOCK = 100  # per product: fewer units than the orders ask for, so some are rejected
SETTLE_S = 25.0
SETTLED = frozenset({"confirmed", "rejected", "cancelled"})


@pytest.fixture
def shared_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database of its own (a file on SQLite), migrated and seeded, dropped after."""
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'two.db'}"
    else:
        url = _create_postgres_database(database_url, "_two")
    env = {**os.environ, "ARCHWAY_DATABASE_URL": url}
    try:
        for command in (("db", "migrate"), ("seed",)):
            subprocess.run([ARCHWAY, *command], env=env, check=True, timeout=120,
                           capture_output=True)
        yield url
    finally:
        if not database_url.startswith("sqlite"):
            _psql(url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def token(env: dict[str, str], user: str, scopes: str) -> str:
    done = subprocess.run([ARCHWAY, "token", "--user", user, "--scope", scopes], env=env,
                          check=True, timeout=60, capture_output=True, text=True)
    return done.stdout.strip()


def read_db(url: str, work: Callable[[Connection], Any]) -> Any:
    """One read of the shared database, from the test's own process."""
    async def run() -> Any:
        db = Database(url, pool_size=1)
        try:
            return await db.read(work)
        finally:
            await db.dispose()

    return asyncio.run(run())


def lease_holders(conn: Connection) -> dict[str, int]:
    """Each leased outbox and the pid of the process relaying it (the holder names it)."""
    rows = conn.execute(select(outbox_leases.c.outbox, outbox_leases.c.holder)).all()
    return {row.outbox: int(row.holder.split(":")[-2]) for row in rows}


def write_side(conn: Connection) -> dict[str, Any]:
    """Everything the read side and the catalog must agree with, from the write model."""
    statuses = dict(conn.execute(select(orders.c.id, orders.c.status)).all())
    lines = conn.execute(select(
        order_lines.c.order_id, order_lines.c.product_id, order_lines.c.quantity,
        order_lines.c.unit_price, orders.c.customer_id,
    ).join(orders, orders.c.id == order_lines.c.order_id)).all()
    answers = Counter(conn.execute(select(catalog_outbox.c.subject)).scalars())
    per_consumer: dict[str, tuple[int, int]] = {}
    for inbox in (orders_inbox, catalog_inbox):  # a consumer's events may come from either outbox
        rows = conn.execute(select(inbox.c.consumer, inbox.c.event_id, inbox.c.event_type)).all()
        for consumer in {row.consumer for row in rows}:
            ids = {row.event_id for row in rows if row.consumer == consumer}
            types = {row.event_type for row in rows if row.consumer == consumer}
            expected = sum(conn.execute(select(func.count()).select_from(outbox).where(
                outbox.c.event_type.in_(types))).scalar_one()
                for outbox in (orders_outbox, catalog_outbox))
            per_consumer[consumer] = (len(ids), int(expected))
    stock_levels = {row.product_id: (row.on_hand, row.reserved)
                    for row in conn.execute(select(stock)).all()}
    return {"statuses": statuses, "lines": lines, "answers": answers,
            "inboxes": per_consumer, "stock": stock_levels}


def test_two_processes_share_one_database_and_one_takes_over_when_the_other_dies(
    shared_database: str, tmp_path: Path,
) -> None:
    url = shared_database
    ports = [free_port(), free_port()]
    # Replicas of one service: one issuer for both, as behind one load balancer.
    envs = [{
        **os.environ, "ARCHWAY_DATABASE_URL": url, "ARCHWAY_ISSUER": f"http://127.0.0.1:{ports[0]}",
        "ARCHWAY_ACCESS_LOG": "false", "ARCHWAY_ARGON2_MEMORY_KIB": "1024",
        "ARCHWAY_OUTBOX_LEASE_SECONDS": str(LEASE_S),
    } for _ in ports]
    with ThreadPoolExecutor(3) as pool:
        alice, bob, admin = pool.map(lambda args: token(envs[0], *args), [
            ("alice@archway.test", "orders:read orders:write"),
            ("bob@archway.test", "orders:read orders:write"),
            ("admin@archway.test", "catalog:write orders:read reports:read"),
        ])
    with ExitStack() as stack:
        # The first process takes both leases as it starts; the second stands by for both.
        servers = [stack.enter_context(serving_monolith(env, port, tmp_path / f"server{n}.log"))
                   for n, (env, port) in enumerate(zip(envs, ports, strict=True))]
        clients = [stack.enter_context(httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=30)) for port in ports]
        holders = read_db(url, lease_holders)
        assert set(holders) == {"orders_outbox", "catalog_outbox"}
        groups = {os.getpgid(pid) for pid in holders.values()}
        assert len(groups) == 1, f"the leases are split between processes: {holders}"
        leader = [server.pid for server in servers].index(groups.pop())
        survivor = 1 - leader

        admin_headers = {"Authorization": f"Bearer {admin}"}
        products = []
        for n in range(2):
            created = clients[0].post("/api/v2/products", headers=admin_headers, json={
                "sku": f"E2E-TWO-{n}-{time.time_ns()}", "name": f"Two {n}", "description": "",
                "category": "kitchen", "price": {"amount": 1000 + n * 250, "currency": "EUR"}})
            assert created.status_code == 201, created.text
            counted = clients[0].put(f"{created.headers['location']}/stock",
                                     headers=admin_headers, json={"on_hand": STOCK})
            assert counted.status_code == 200, counted.text
            products.append(str(created.json()["id"]))

        customers = [{"Authorization": f"Bearer {alice}"}, {"Authorization": f"Bearer {bob}"}]

        def place(n: int, via: list[int]) -> str | None:
            """Order ``n`` (1–3 units of one product, every third order both products),
            through one of ``via``; None if that process died before it answered."""
            lines = [{"product_id": products[n % 2], "quantity": 1 + n % 3}]
            if n % 3 == 0:
                lines.append({"product_id": products[(n + 1) % 2], "quantity": 1})
            try:
                placed = clients[via[n % len(via)]].post(
                    "/api/v1/orders", headers=customers[n % 2], json={"lines": lines})
            except httpx.TransportError:
                return None
            assert placed.status_code == 202, placed.text
            return str(placed.json()["id"])

        def cancel(n: int, order_id: str) -> None:
            # Through the other process than the one it was placed on; a confirmed or a still
            # pending order may be cancelled, a rejected one is refused (409).
            answer = clients[survivor].post(f"/api/v1/orders/{order_id}/cancel",
                                            headers=customers[n % 2])
            assert answer.status_code in (202, 409), answer.text

        with ThreadPoolExecutor(8) as pool:
            first = list(pool.map(lambda n: place(n, [0, 1]), range(ORDERS_BEFORE_KILL // 2)))
            # The leader dies in the middle of the load: its in-flight orders fail or not.
            killing = pool.submit(stop_group, servers[leader], signal.SIGKILL)
            first += list(pool.map(lambda n: place(n, [0, 1]),
                                   range(ORDERS_BEFORE_KILL // 2, ORDERS_BEFORE_KILL)))
            killing.result()
            later = list(pool.map(lambda n: place(n, [survivor]), range(
                ORDERS_BEFORE_KILL, ORDERS_BEFORE_KILL + ORDERS_AFTER_KILL)))
            placed = [(n, order_id) for n, order_id in enumerate([*first, *later]) if order_id]
            list(pool.map(lambda item: cancel(*item), placed[::7]))

        # Every order the write model holds settles, relayed by the survivor alone.
        deadline = time.monotonic() + SETTLE_S
        while True:
            seen = read_db(url, write_side)
            unsettled = [i for i, status in seen["statuses"].items() if status not in SETTLED]
            if not unsettled and all(got == want for got, want in seen["inboxes"].values()):
                break
            assert time.monotonic() < deadline, (
                f"not settled: {len(unsettled)} orders pending, inboxes {seen['inboxes']}")
            time.sleep(0.2)
        assert {os.getpgid(pid) for pid in read_db(url, lease_holders).values()} == {
            servers[survivor].pid}
        statuses = seen["statuses"]
        assert {order_id for _, order_id in placed} <= set(statuses)
        assert len(statuses) >= ORDERS_AFTER_KILL + ORDERS_BEFORE_KILL // 2
        assert {"confirmed", "rejected", "cancelled"} <= set(statuses.values())

        # Stock: held exactly once for each order still confirmed, nothing for the others.
        confirmed_lines = [line for line in seen["lines"] if statuses[line.order_id] == "confirmed"]
        for product_id in products:
            held = sum(line.quantity for line in confirmed_lines if line.product_id == product_id)
            assert seen["stock"][product_id] == (STOCK, held)
        # One answer of the catalog per order (a reservation applied twice would answer twice),
        # and every event of a consumer's types in its inbox once (nothing skipped).
        assert seen["answers"] == dict.fromkeys(statuses, 1)
        assert seen["inboxes"].keys() >= {
            "catalog.reservations", "orders.saga", "orders.order_view",
            "orders.customer_summary", "orders.product_sales"}

        # The read side, through the survivor's API, equals the write side's sums.
        reader = clients[survivor]
        customer_ids = {line.customer_id for line in seen["lines"]}
        for customer_id in customer_ids:
            mine = {line.order_id for line in confirmed_lines if line.customer_id == customer_id}
            spent = sum(line.quantity * line.unit_price for line in confirmed_lines
                        if line.customer_id == customer_id)
            summary = reader.get(f"/api/v2/reports/customers/{customer_id}",
                                 headers=admin_headers)
            assert summary.status_code == 200, summary.text
            assert (summary.json()["orders_count"], summary.json()["total_spent"]) == (
                len(mine), {"amount": spent, "currency": "EUR"})
        top = reader.get("/api/v2/reports/top-products", headers=admin_headers,
                         params={"limit": 100})
        assert top.status_code == 200, top.text
        units = {row["product_id"]: row["units_sold"] for row in top.json()["data"]}
        for product_id in products:
            assert units.get(product_id, 0) == sum(
                line.quantity for line in confirmed_lines if line.product_id == product_id)
        for n, order_id in placed[::11]:  # the order view, by its owner
            shown = reader.get(f"/api/v1/orders/{order_id}", headers=customers[n % 2])
            assert shown.status_code == 200 and shown.json()["status"] == statuses[order_id]

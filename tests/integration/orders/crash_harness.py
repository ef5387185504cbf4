"""The crash-recovery harness: a dying child process, a database of its own, and a ledger
of every effect, shared by the crash tests (see test_crash_recovery.py for what they prove)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, make_url

from archway.catalog.consumers import RESERVATIONS_CONSUMER, STOCK_RESERVED
from archway.catalog.store import catalog_inbox, catalog_outbox, reservations
from archway.config import Settings, load_settings
from archway.kernel.auth.principal import Principal
from archway.kernel.events.bus import InProcessBus
from archway.kernel.tables import kernel_metadata
from archway.orders.consumers import SAGA_CONSUMER
from archway.orders.events import (
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    ORDER_PLACED,
)
from archway.orders.projections import ORDER_VIEW_CONSUMER
from archway.orders.store import (
    order_lines,
    order_view,
    orders,
    orders_inbox,
    orders_metadata,
    orders_outbox,
)
from archway.topologies.monolith import Monolith, build
from tests.ordering import eventually

CUSTOMER = Principal(
    "crash-customer", scopes=frozenset({"orders:read", "orders:write"}),
    roles=frozenset({"customer"}))
CHILD_TIMEOUT = 30.0
PRICE, QUANTITY = 1999, 2

# The crashing process. argv: database url, crash point, relays to start, action, argument...
CRASHING_PROCESS = r"""
import asyncio, os, signal, sys
from archway.config import load_settings
from archway.kernel.auth.principal import Principal
from archway.kernel.events.bus import InProcessBus
from archway.orders.domain import LineRequest
from archway.topologies.monolith import build

url, crash_point, relays, action, *args = sys.argv[1:]
CUSTOMER = Principal("crash-customer", scopes=frozenset({"orders:read", "orders:write"}),
                     roles=frozenset({"customer"}))


def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class DyingBus(InProcessBus):
    async def publish(self, events):
        types = {"publish:" + event.get_type() for event in events}
        if crash_point in types:
            die()
        await super().publish(events)
        if crash_point in {"handled:" + event.get_type() for event in events}:
            die()


async def main():
    settings = load_settings(database_url=url, environment="test", access_log=False,
                             argon2_time_cost=1, argon2_memory_kib=64, outbox_poll_seconds=0.05)
    graph = build(settings, bus=DyingBus())
    if crash_point == "reserve":  # the catalog's transaction committed, nothing after it ran
        graph.catalog.forget_stock = lambda product_ids: die()
    if action == "http-place":  # through the app: die as the idempotency answer is stored
        import httpx
        from archway.kernel.http.idempotency_store import AnswerWriter
        from archway.topologies.monolith import create_app

        async def flush_then_die(self):
            die()

        AnswerWriter.flush = flush_then_die
        token, key, product_id, quantity = args
        app = create_app(settings, graph=graph)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                await http.post("/api/v1/orders", json={
                    "lines": [{"product_id": product_id, "quantity": int(quantity)}]},
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key})
    await graph.start(relays=False)
    for relay in graph.relays.all:
        if relay.name.split("_")[0] in relays.split(","):
            relay.start()
    if action == "place":
        order = await graph.orders.place_order(CUSTOMER, [LineRequest(args[0], int(args[1]))])
        print(order.id, flush=True)
    elif action == "cancel":
        await graph.orders.cancel_order(CUSTOMER, args[0])
    await asyncio.sleep(15)
    print("still alive: the crash point was never reached", file=sys.stderr, flush=True)
    sys.exit(3)


asyncio.run(main())
"""


# -- a database of their own -----------------------------------------------------------------


def _psql(url: str, statement: str) -> None:
    parsed = make_url(url)
    subprocess.run(
        ["psql", "-q", "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432),
         "-U", parsed.username or "postgres", "-d", "postgres", "-c", statement],
        check=True, timeout=60, capture_output=True,
    )


def crash_settings(url: str) -> Settings:
    return load_settings(
        database_url=url, environment="test", access_log=False, argon2_time_cost=1,
        argon2_memory_kib=64, read_cache_ttl_seconds=0, outbox_poll_seconds=0.05)


async def start(graphs: list[Monolith], url: str, *, bus: InProcessBus | None = None,
                relays: bool = True) -> Monolith:
    graph = build(crash_settings(url), bus=bus)
    graphs.append(graph)
    await graph.start(relays=relays)
    return graph


# -- what the database holds -----------------------------------------------------------------


@dataclass(frozen=True)
class Ledger:
    """Everything the saga wrote for one order, read straight from the tables."""

    status: str
    version: int
    orders_events: list[tuple[str, bool]]  # (type, published) in outbox order
    catalog_events: list[tuple[str, bool]]
    view: list[tuple[str, int]]  # (status, version) rows of the order in order_view
    orders_inbox: dict[str, int]  # consumer -> rows
    catalog_inbox: int
    reservation: str | None
    reports: bool  # whether the report read models exist (they are new)
    sales: dict[str, tuple[int, int]]  # product -> (units sold, revenue)
    spent: tuple[int, int] | None  # the customer's (orders counted, total spent)

    @property
    def all_published(self) -> bool:
        return all(p for _, p in self.orders_events + self.catalog_events)


async def ledger(graph: Monolith, order_id: str) -> Ledger:
    def read(conn: Connection) -> Ledger:
        order = conn.execute(select(orders.c.status, orders.c.version).where(
            orders.c.id == order_id)).one()
        ours = [
            (row.event_type, row.published_at is not None, row.event_id)
            for row in conn.execute(select(orders_outbox).where(
                orders_outbox.c.subject == order_id).order_by(orders_outbox.c.position))
        ]
        theirs = [
            (row.event_type, row.published_at is not None, row.event_id)
            for row in conn.execute(select(catalog_outbox).where(
                catalog_outbox.c.subject == order_id).order_by(catalog_outbox.c.position))
        ]
        ids = [event_id for _, _, event_id in ours + theirs]
        inbox = dict(conn.execute(select(orders_inbox.c.consumer, func.count()).where(
            orders_inbox.c.event_id.in_(ids)).group_by(orders_inbox.c.consumer)).all())
        catalog_seen = conn.execute(select(func.count()).select_from(catalog_inbox).where(
            catalog_inbox.c.consumer == RESERVATIONS_CONSUMER,
            catalog_inbox.c.event_id.in_(ids))).scalar_one()
        view = [(row.status, row.version) for row in conn.execute(select(order_view).where(
            order_view.c.order_id == order_id))]
        reservation = conn.execute(select(reservations.c.status).where(
            reservations.c.order_id == order_id)).scalar_one_or_none()
        product_ids = conn.execute(select(order_lines.c.product_id).where(
            order_lines.c.order_id == order_id)).scalars().all()
        sales: dict[str, tuple[int, int]] = {}
        spent = None
        reports = "orders_product_sales" in orders_metadata.tables
        if (table := orders_metadata.tables.get("orders_product_sales")) is not None:
            sales = {row.product_id: (row.units_sold, row.revenue) for row in conn.execute(
                select(table).where(table.c.product_id.in_(product_ids)))}
        if (table := orders_metadata.tables.get("orders_customer_summary")) is not None:
            row = conn.execute(select(table).where(
                table.c.customer_id == CUSTOMER.subject)).first()
            spent = (row.orders_count, row.total_spent) if row else None
        return Ledger(
            status=order.status, version=order.version,
            orders_events=[(t, p) for t, p, _ in ours],
            catalog_events=[(t, p) for t, p, _ in theirs], view=view,
            orders_inbox={str(k): int(v) for k, v in inbox.items()},
            catalog_inbox=int(catalog_seen), reservation=reservation, reports=reports,
            sales=sales, spent=spent)

    return await graph.db.read(read)


async def recovered(graph: Monolith, order_id: str, status: str) -> Ledger:
    """The ledger once the restarted relays delivered everything and the view shows ``status``."""
    async def probe() -> Ledger:
        await graph.relays.settle(timeout=2.0)
        return await ledger(graph, order_id)

    return await eventually(
        probe, lambda seen: seen.all_published and seen.view == [(status, seen.version)],
        timeout=10.0)


def assert_exactly_once(seen: Ledger, *, cancelled: bool = False) -> None:
    """One order_placed, one answer, one confirmation (and one cancellation): each consumed
    once by each of its consumers, the view one row at the order's version."""
    expected = [ORDER_PLACED, ORDER_CONFIRMED] + ([ORDER_CANCELLED] if cancelled else [])
    assert [t for t, _ in seen.orders_events] == expected
    assert [t for t, _ in seen.catalog_events] == [STOCK_RESERVED]
    assert seen.status == ("cancelled" if cancelled else "confirmed")
    assert seen.version == len(expected)
    assert seen.view == [(seen.status, seen.version)]
    # Every projection (order_view, and the reports when built) consumed every order event
    # once; the saga consumed the one answer once; the catalog consumed order_placed (and
    # order_cancelled) once.
    projections = {c: n for c, n in seen.orders_inbox.items() if c != SAGA_CONSUMER}
    assert ORDER_VIEW_CONSUMER in projections
    assert set(projections.values()) == {len(expected)}, seen.orders_inbox
    assert seen.orders_inbox[SAGA_CONSUMER] == 1
    assert seen.catalog_inbox == (2 if cancelled else 1)
    assert seen.reservation == ("released" if cancelled else "held")
    # The sale is counted once (and taken back out once): never twice.
    units = 0 if cancelled else QUANTITY
    if seen.reports:
        assert list(seen.sales.values()) == [(units, units * PRICE)]


async def leases_lapse(graph: Monolith) -> None:
    """Time passes: the outbox leases the killed process held expire, as they would after
    their ttl (without this a restarted relay stands by until then)."""
    leases = kernel_metadata.tables.get("kernel_outbox_leases")
    if leases is not None:
        await graph.db.write(lambda conn: conn.execute(update(leases).values(expires_at=0)))


# Forks one crashing child per request, so that each child starts with archway imported (the
# import is most of a child's cost). stdin: JSON [argv, output path] lines; stdout: how each
# child ended. The fork happens before any thread, event loop or connection exists.
FORKING_PARENT = r"""
import json, os, sys, traceback
import httpx
import archway.kernel.http.idempotency
import archway.topologies.monolith

CHILD = compile(sys.argv[1], "<crashing>", "exec")
for line in sys.stdin:
    argv, output = json.loads(line)
    pid = os.fork()
    if pid == 0:
        try:
            for fd, path in ((1, output), (2, output + ".err")):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.argv = ["crashing", *argv]
            exec(CHILD, {"__name__": "__main__"})
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    ended = {"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
             "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}
    print(json.dumps(ended), flush=True)
"""


class Crasher:
    """Runs :data:`CRASHING_PROCESS` in a real child process that must die of SIGKILL."""

    def __init__(self, parent: asyncio.subprocess.Process, workdir: Path) -> None:
        self._parent = parent
        self._workdir = workdir
        self._runs = 0

    async def run(self, url: str, crash_point: str, relays: str, *args: str) -> list[str]:
        """Returns what the child printed before it died."""
        assert self._parent.stdin is not None and self._parent.stdout is not None
        self._runs += 1
        output = self._workdir / f"child-{self._runs}.out"
        request = [[url, crash_point, relays, *args], str(output)]
        self._parent.stdin.write(json.dumps(request).encode() + b"\n")
        await self._parent.stdin.drain()
        line = await asyncio.wait_for(self._parent.stdout.readline(), CHILD_TIMEOUT)
        assert line, f"the forking parent died (exit {await self._parent.wait()})"
        ended = json.loads(line)
        errors = Path(f"{output}.err").read_text()[-3000:]
        assert ended == {"signal": 9, "code": None}, (ended, errors)
        return output.read_text().split()

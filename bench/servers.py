"""The servers a benchmark runs against: the monolith (migrated, seeded, in a rate-limit mode,
on SQLite or a fresh PostgreSQL database) and the bare FastAPI route, each pinned to its core in
its own process group; and the saga's catch-up after a write load."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import httpx
from cases import PRODUCT_VARIABLES
from machine import free_port, pin
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
READY_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10
SATURATED_STOCK = 1_000_000_000  # orders under load never run out of stock
CATCH_UP_TIMEOUT_S = 60


def archway(*args: str, env: dict[str, str]) -> str:
    """Run one ``archway`` CLI command to completion and return its stdout."""
    done = subprocess.run(
        [str(BIN / "archway"), *args],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        sys.exit(f"archway {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def start_server(
    stack: ExitStack, command: list[str], env: dict[str, str], log: Path, probe_url: str,
    core: int | None,
) -> None:
    """Start a server (pinned to ``core`` if given) in its own process group, stopped when
    ``stack`` closes, and wait until ``probe_url`` answers 200."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*(pin(core) if core is not None else []), *command],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack.callback(stop_server, process)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{command[0]} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(probe_url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit(f"{probe_url} not 200 after {READY_TIMEOUT_S}s:\n{log.read_text()}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


# The app's rate limits in each mode of --rate-limits. Measured on, every request is counted and
# none is refused (a refusal is cheaper than the work it spares, and would flatter the figure):
# a quota no load here reaches, over a 1 s window, so the one consumer's moving window holds
# about a second of requests (a real consumer's 60 s window holds at most its quota).
UNREACHED_QUOTA = {f"ARCHWAY_RATE_LIMIT_{plan}_{cls}": "100000000"
                   for plan in ("ANONYMOUS", "DEFAULT", "PARTNER")
                   for cls in ("READS", "WRITES", "AUTH")}
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RATE_LIMIT_MODES = {
    "off": {"ARCHWAY_RATE_LIMITS": "off"},
    "memory": {"ARCHWAY_RATE_LIMITS": "on", "ARCHWAY_RATE_LIMIT_WINDOW_SECONDS": "1",
               "ARCHWAY_REDIS_URL": "", **UNREACHED_QUOTA},
    "redis": {"ARCHWAY_RATE_LIMITS": "on", "ARCHWAY_RATE_LIMIT_WINDOW_SECONDS": "1",
              "ARCHWAY_REDIS_URL": REDIS_URL, **UNREACHED_QUOTA},
}


@dataclass(frozen=True)
class App:
    """The monolith's processes on one database: ``base_urls[0]`` started first, so it holds
    the outbox leases (it relays and runs the consumers); the others stand by and take orders."""

    base_urls: list[str]
    variables: dict[str, str]
    grpc_targets: list[str] = field(default_factory=list)  # host:port, as base_urls


def start_app(
    stack: ExitStack, tmp: Path, url: str, cores: list[int | None], rate_limits: str = "off"
) -> App:
    """Migrate and seed the database at ``url``, start one monolith process per entry of
    ``cores`` on it (one after the other, so the first takes the leases) with the
    ``rate_limits`` mode, and return their base URLs and the case variables."""
    if not (BIN / "archway").exists():
        sys.exit(f"{BIN / 'archway'} not found: install the project, or run --cases hello")
    env = {**os.environ, "ARCHWAY_DATABASE_URL": url, "ARCHWAY_ACCESS_LOG": "false",
           **RATE_LIMIT_MODES[rate_limits]}
    archway("db", "migrate", env=env)
    archway("seed", env=env)
    token = archway(
        "token",
        "--user",
        "alice@archway.test",
        "--scope",
        "profile orders:read orders:write",
        env=env,
    ).strip()
    base_urls, grpc_targets = [], []
    for n, core in enumerate(cores):
        port, grpc_port = free_port(HOST), free_port(HOST)
        base_url = f"http://{HOST}:{port}"
        # Each process serves gRPC too: on a port of its own, so replicas on one host can start.
        command = [str(BIN / "archway"), "serve", "monolith", "--host", HOST, "--port", str(port),
                   "--grpc-port", str(grpc_port)]
        start_server(stack, command, env, tmp / f"app{n}.log", f"{base_url}/readyz", core)
        base_urls.append(base_url)
        grpc_targets.append(f"{HOST}:{grpc_port}")
    first = base_urls[0]
    products = httpx.get(f"{first}/api/v1/products", params={"limit": 3}, timeout=5)
    products.raise_for_status()
    ids = [str(item["id"]) for item in products.json()["items"]]
    admin = archway("token", "--user", "admin@archway.test", "--scope", "catalog:write", env=env)
    for product_id in ids:
        httpx.put(
            f"{first}/api/v1/products/{product_id}/stock", json={"on_hand": SATURATED_STOCK},
            headers={"Authorization": f"Bearer {admin.strip()}"}, timeout=10,
        ).raise_for_status()
    variables = {"token": token, **dict(zip(PRODUCT_VARIABLES, ids, strict=True))}
    place_history(first, variables)
    return App(base_urls, variables, grpc_targets)


def place_history(base_url: str, variables: dict[str, str], orders: int = 30) -> None:
    """Give Alice a history, so `orders_list` reads full pages, and let the saga settle it."""
    headers = {"Authorization": f"Bearer {variables['token']}"}
    for _ in range(orders):
        httpx.post(f"{base_url}/api/v1/orders", headers=headers, timeout=30, json={
            "lines": [{"product_id": variables["product_id"], "quantity": 1}]}).raise_for_status()
    catch_up_seconds(base_url, variables)


def catch_up_seconds(base_url: str, variables: dict[str, str]) -> tuple[float, float]:
    """Place one order right after a write load and time it until the read model shows it
    settled: the saga and the projections have worked through everything queued before it.
    With several processes it goes through the last one, which does not hold the leases:
    its events reach the consumers only through the process that does."""
    headers = {"Authorization": f"Bearer {variables['token']}"}
    started = time.monotonic()
    placed = httpx.post(f"{base_url}/api/v1/orders", headers=headers, timeout=30, json={
        "lines": [{"product_id": variables["product_id"], "quantity": 1}]})
    placed.raise_for_status()
    accepted = round(time.monotonic() - started, 3)  # the commands still queued went first
    url = f"{base_url}/api/v1/orders/{placed.json()['id']}"
    while time.monotonic() - started < CATCH_UP_TIMEOUT_S:
        seen = httpx.get(url, headers=headers, timeout=30)
        if seen.status_code == 200 and seen.json()["status"] != "pending":
            return round(time.monotonic() - started, 3), accepted
        time.sleep(0.05)
    return float("inf"), accepted


def start_hello(stack: ExitStack, tmp: Path, core: int | None) -> str:
    port = free_port(HOST)
    uvicorn = f"-m uvicorn bench.hello_app:app --host {HOST} --port {port} --loop uvloop"
    command = [sys.executable, *uvicorn.split(), "--http", "httptools", "--no-access-log"]
    base_url = f"http://{HOST}:{port}"
    start_server(stack, command, dict(os.environ), tmp / "hello.log", f"{base_url}/hello", core)
    return base_url


def fresh_postgres(stack: ExitStack, server_url: str) -> str:
    """A new database on the PostgreSQL server at ``server_url``, dropped when ``stack``
    closes (after the servers using it, which were started later and so stop first)."""
    server = make_url(server_url)
    name = f"archway_bench_{os.getpid()}_{int(time.time())}"
    admin_dsn = server.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False)

    async def run(statement: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    stack.callback(lambda: asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))
    return server.set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False)

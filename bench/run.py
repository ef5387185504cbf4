"""Benchmark the monolith against a bare FastAPI route with wrk. See bench/README.md.

.venv/bin/python bench/run.py [--runs 3] [--duration 10] [--connections 32,128,512]
                              [--cases hello,product_by_id,...]
                              [--database sqlite|postgresql|both] [--database-url URL]
                              [--postgres-url SERVER_URL] [--processes N]
                              [--rate-limits off,memory,redis]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import httpx
from machine import busy, free_port, layout, pin
from sqlalchemy.engine import make_url
from wrk import (
    Case,
    Measurement,
    graphql_mutation_script,
    keyed_request_script,
    run_wrks,
    wrk_command,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
WARMUP_S = 3
READY_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"

AUTH = {"Authorization": "Bearer {token}"}
PRODUCT_VARIABLES = ("product_id", "product_id_2", "product_id_3")


def order_body(lines: int) -> str:
    """An order of ``lines`` lines over the first products of the seed."""
    items = ", ".join(
        f'{{"product_id": "{{{name}}}", "quantity": 1}}' for name in PRODUCT_VARIABLES[:lines])
    return f'{{"lines": [{items}]}}'

def graphql_get(query: str) -> str:
    """A GraphQL query as a GET (so wrk needs no script), ``{product_id}`` kept for the case."""
    return "/graphql?query=" + quote(query, safe="").replace("%7Bproduct_id%7D", "{product_id}")


GRAPHQL_PRODUCT = '{ product(id: "{product_id}") { id name price { amount currency } } }'
GRAPHQL_PLACE = (  # {key}: a new idempotency key per request (graphql_mutation_script)
    '{"query": "mutation($key: String) { placeOrder(input: {lines: [{productId: '
    '\\"{product_id}\\", quantity: 1}]}, idempotencyKey: $key) { id status } }", '
    '"variables": {"key": "{key}"}}')

CASES = [
    Case("hello", "hello", "GET", "/hello"),
    Case("product_by_id", "app", "GET", "/api/v1/products/{product_id}"),
    Case("product_list", "app", "GET", "/api/v1/products?limit=20"),
    Case("users_me", "app", "GET", "/api/v1/users/me", AUTH),
    Case("order_place", "app", "POST", "/api/v1/orders",
         {**AUTH, "Content-Type": "application/json"},
         keyed_request_script("POST", *(order_body(n) for n in (1, 2, 3)))),
    Case("orders_list", "app", "GET", "/api/v1/orders?limit=20", AUTH),
    # GraphQL's product query, and bare Strawberry (with its caches) answering the same shape
    # from memory: the peers' baseline (bench/README.md).
    Case("graphql_product", "app", "GET", graphql_get(GRAPHQL_PRODUCT)),
    Case("graphql_bare", "hello", "GET", graphql_get(  # its server knows no seed: any id
        GRAPHQL_PRODUCT.replace("{product_id}", "01a2441e-0000-7000-8000-000000000000"))),
    # One line per order, over REST and GraphQL (gRPC's PlaceOrder: bench/grpc_run.py).
    Case("order_place_1", "app", "POST", "/api/v1/orders",
         {**AUTH, "Content-Type": "application/json"},
         keyed_request_script("POST", order_body(1))),
    Case("graphql_place", "app", "POST", "/graphql", {**AUTH, "Content-Type": "application/json"},
         graphql_mutation_script(GRAPHQL_PLACE)),
]
SATURATED_STOCK = 1_000_000_000  # orders under load never run out of stock
CATCH_UP_TIMEOUT_S = 60


@dataclass
class Result:
    """One (case, connections) point: medians of the runs, worst errors of any run."""

    case: str
    connections: int
    req_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    non_2xx: int
    runs: list[Measurement]
    ratio_to_hello: float | None = None
    catch_up_s: float | None = None  # writes: until an order placed after the load is settled
    catch_up_placed_s: float | None = None  # of which until the server accepted that order


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


def measure(
    case: Case,
    base_urls: list[str],
    variables: dict[str, str],
    connections: int,
    runs: int,
    duration_s: int,
    tmp: Path,
    wrk_core: int | None,
) -> Result:
    """A warm-up, then ``runs`` measured runs; the median of each figure, the worst errors.
    With several servers, one wrk per server at the same time, the connections split evenly
    between them (see :func:`wrk.run_wrks`)."""
    headers = {name: value.format(**variables) for name, value in case.headers.items()}
    script = None
    if case.script is not None:
        script = tmp / f"{case.name}.lua"
        text = case.script
        for name, value in variables.items():  # not str.format: Lua has braces of its own
            text = text.replace("{" + name + "}", value)
        script.write_text(text)
    wrk_pin = pin(wrk_core) if wrk_core is not None else []
    share = connections // len(base_urls)

    def commands(duration: int) -> list[list[str]]:
        return [wrk_command(wrk_pin, base_url + case.path.format(**variables), share, duration,
                            headers, script) for base_url in base_urls]

    run_wrks(commands(WARMUP_S), WARMUP_S)
    samples = [run_wrks(commands(duration_s), duration_s) for _ in range(runs)]
    catch_up = catch_up_seconds(base_urls[-1], variables) if case.method != "GET" else None
    return Result(
        case=case.name,
        connections=share * len(base_urls),
        req_per_s=statistics.median(s.req_per_s for s in samples),
        p50_ms=statistics.median(s.p50_ms for s in samples),
        p99_ms=statistics.median(s.p99_ms for s in samples),
        errors=max(s.errors for s in samples),
        non_2xx=max(s.non_2xx for s in samples),
        runs=samples,
        catch_up_s=catch_up[0] if catch_up else None,
        catch_up_placed_s=catch_up[1] if catch_up else None,
    )


def add_ratios(results: list[Result]) -> None:
    hello = {r.connections: r.req_per_s for r in results if r.case == "hello"}
    for result in results:
        baseline = hello.get(result.connections)
        if baseline:
            result.ratio_to_hello = round(result.req_per_s / baseline, 3)


def print_table(title: str, results: list[Result]) -> None:
    print(f"\n{title}")
    header = f"{'case':<22}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
    print(f"{header}{'errors':>8}{'non-2xx':>9}{'/hello':>8}")
    for r in results:
        ratio = "-" if r.ratio_to_hello is None else f"{r.ratio_to_hello:.2f}"
        print(
            f"{r.case:<22}{r.connections:>6}{r.req_per_s:>10,.0f}{r.p50_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{r.errors:>8}{r.non_2xx:>9}{ratio:>8}"
        )
    for r in results:
        if r.catch_up_s is not None:
            print(f"{r.case} c={r.connections}: an order placed after the load was settled "
                  f"in the read model {r.catch_up_s} s later (accepted after "
                  f"{r.catch_up_placed_s} s)")


def print_side_by_side(suites: list[Suite]) -> None:
    """One row per (case, connections), each database's req/s (p99 ms) and catch-up."""
    print("\nside by side: req/s (p99 ms) [catch-up s]")
    print(f"{'case':<16}{'conns':>6}" + "".join(f"{suite.database:>30}" for suite in suites))
    keys = dict.fromkeys((r.case, r.connections) for suite in suites for r in suite.results)
    for case, connections in keys:
        cells = []
        for suite in suites:
            found = [r for r in suite.results if (r.case, r.connections) == (case, connections)]
            if not found:
                cells.append(f"{'-':>30}")
                continue
            r = found[0]
            cell = f"{r.req_per_s:,.0f} ({r.p99_ms:,.1f})"
            if r.catch_up_s is not None:
                cell += f" [{r.catch_up_s}]"
            cells.append(f"{cell:>30}")
        print(f"{case:<16}{connections:>6}" + "".join(cells))


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args() -> argparse.Namespace:
    names = [case.name for case in CASES]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured runs per point (median)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--connections", type=comma_list, default=["32", "128", "512"])
    parser.add_argument("--cases", type=comma_list, default=names, help=",".join(names))
    parser.add_argument(
        "--database", choices=["sqlite", "postgresql", "both"], default=None,
        help="a fresh temporary SQLite file (the default), a fresh PostgreSQL database created "
        "on --postgres-url and dropped after, or both in turn, printed side by side")
    parser.add_argument(
        "--database-url", help="an existing database (SQLAlchemy async URL) instead of a fresh "
        "one; not with --database both")
    parser.add_argument(
        "--postgres-url", default=DEFAULT_POSTGRES,
        help=f"the PostgreSQL server for fresh databases (default {DEFAULT_POSTGRES})")
    parser.add_argument(
        "--rate-limits", type=comma_list, default=["off"],
        help="the app's rate limits, one app per mode in turn: off (the targets' figures), "
        "memory, redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379/0); the app cases are "
        "named case[mode] when a mode other than off is asked for")
    parser.add_argument(
        "--processes", type=int, default=1,
        help="monolith processes on the one database, as replicas (default 1); each gets a "
        "share of wrk's connections")
    args = parser.parse_args()
    if set(args.rate_limits) - set(RATE_LIMIT_MODES) or not args.rate_limits:
        parser.error(f"--rate-limits takes modes among {sorted(RATE_LIMIT_MODES)}")
    unknown = set(args.cases) - set(names)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}; known: {names}")
    if not all(c.isdigit() and int(c) >= 2 for c in args.connections):
        parser.error("--connections takes integers >= 2 (wrk runs 2 threads)")
    if args.runs < 1 or args.duration < 1:
        parser.error("--runs and --duration must be >= 1")
    if not 1 <= args.processes <= 8:
        parser.error("--processes takes 1 to 8")
    args.connections = [int(c) for c in args.connections]
    if any(c // args.processes < 2 for c in args.connections):
        parser.error("each process needs at least 2 connections (wrk runs 2 threads)")
    if args.database_url and args.database == "both":
        parser.error("--database-url names one database: not with --database both")
    if args.database is None:
        args.database = "postgresql" if (args.database_url or "").startswith("postgresql") \
            else "sqlite"
    return args


def exit_on_signal(signum: int, _frame: object) -> None:
    """Turn SIGTERM/SIGHUP into SystemExit, so the servers are stopped on the way out."""
    sys.exit(128 + signum)


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


@dataclass
class Suite:
    """Every case on one database."""

    database: str
    processes: int
    layout: str
    results: list[Result]


def run_suite(args: argparse.Namespace, database: str, tmp: Path) -> Suite:
    """Every chosen case, for every connection count, on one database (fresh unless
    ``--database-url`` names one), with its own servers."""
    cases = [case for case in CASES if case.name in args.cases]
    server_cores, wrk_core, where = layout(args.processes)
    print(f"{database}: {args.processes} monolith process(es); {where}", file=sys.stderr)
    results: list[Result] = []
    labelled = args.rate_limits != ["off"]
    needs_app = any(case.target == "app" for case in cases)
    with ExitStack() as stack:
        hello = None
        if any(case.target == "hello" for case in cases):
            hello = App([start_hello(stack, tmp, server_cores[0])], {})
        for index, mode in enumerate(args.rate_limits if needs_app else ["off"]):
            # One app per rate-limit mode, in turn (no idle one competes for its core); hello is
            # measured beside the first. One case at a time, so the idle server does not
            # compete; every read case before any write case, whose saga backlog would
            # otherwise run during them.
            with ExitStack() as app_stack:
                apps: dict[str, App] = {} if hello is None else {"hello": hello}
                mode_tmp = tmp / f"{database}-{mode}"
                mode_tmp.mkdir()
                if needs_app:
                    if args.database_url:
                        url = args.database_url
                    elif database == "postgresql":
                        url = fresh_postgres(app_stack, args.postgres_url)
                    else:
                        url = f"sqlite+aiosqlite:///{mode_tmp / 'bench.db'}"
                    apps["app"] = start_app(app_stack, mode_tmp, url, list(server_cores), mode)
                mode_cases = [case for case in cases if case.target == "app" or index == 0]
                reads = [case for case in mode_cases if case.method == "GET"]
                writes = [case for case in mode_cases if case.method != "GET"]
                for group in (reads, writes):
                    for connections in args.connections:
                        for case in group:
                            app = apps[case.target]
                            label = case.name
                            if labelled and case.target == "app":
                                label = f"{case.name}[{mode}]"
                            print(f"{database} {label} c={connections} ...", file=sys.stderr,
                                  flush=True)
                            result = measure(
                                case, app.base_urls, app.variables, connections, args.runs,
                                args.duration, mode_tmp, wrk_core)
                            result.case = label
                            results.append(result)
    add_ratios(results)
    return Suite(database, args.processes, where, results)


def main() -> None:
    args = parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, exit_on_signal)
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    server_cores, wrk_core, _ = layout(args.processes)
    used = (*server_cores, *(() if wrk_core is None else (wrk_core,)))
    if not all(pin(core) for core in used):
        print("warning: taskset unavailable; not pinned", file=sys.stderr)
    idle_check = busy(tuple(sorted(set(used))))
    if any(fraction > 0.1 for fraction in idle_check.values()):
        print(f"warning: cores busy before start {idle_check}; noisy figures", file=sys.stderr)
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    with tempfile.TemporaryDirectory(prefix="archway-bench-") as tmp_dir:
        suites = [run_suite(args, database, Path(tmp_dir)) for database in databases]
    for suite in suites:
        print_table(f"{suite.database}, {suite.processes} process(es): {suite.layout}",
                    suite.results)
    if len(suites) > 1:
        print_side_by_side(suites)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "runs_per_point": args.runs,
                "duration_s": args.duration,
                "warmup_s": WARMUP_S,
                "core_busy_before_start": idle_check,
                "rate_limits": args.rate_limits,
                "suites": [asdict(suite) for suite in suites],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Benchmark the monolith against a bare FastAPI route with wrk. See bench/README.md.

.venv/bin/python bench/run.py [--runs 3] [--duration 10] [--connections 32,128,512]
                              [--cases hello,product_by_id,...] [--database-url URL]
"""

from __future__ import annotations

import argparse
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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
from machine import busy, free_port, pin
from wrk import Case, Measurement, keyed_request_script, run_wrk

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "latest.json"
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
WARMUP_S = 3
READY_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10
SERVER_CORE, WRK_CORE = 0, 1

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
    stack: ExitStack, command: list[str], env: dict[str, str], log: Path, probe_url: str
) -> None:
    """Start a server pinned to the server core in its own process group, stopped when
    ``stack`` closes, and wait until ``probe_url`` answers 200."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*pin(SERVER_CORE), *command],
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


def start_app(stack: ExitStack, tmp: Path, database_url: str | None) -> tuple[str, dict[str, str]]:
    """Migrate, seed and start the monolith; return its base URL and the case variables."""
    if not (BIN / "archway").exists():
        sys.exit(f"{BIN / 'archway'} not found: install the project, or run --cases hello")
    url = database_url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    env = {**os.environ, "ARCHWAY_DATABASE_URL": url, "ARCHWAY_ACCESS_LOG": "false"}
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
    port = free_port(HOST)
    base_url = f"http://{HOST}:{port}"
    command = [str(BIN / "archway"), "serve", "monolith", "--host", HOST, "--port", str(port)]
    start_server(stack, command, env, tmp / "app.log", f"{base_url}/readyz")
    products = httpx.get(f"{base_url}/api/v1/products", params={"limit": 3}, timeout=5)
    products.raise_for_status()
    ids = [str(item["id"]) for item in products.json()["items"]]
    admin = archway("token", "--user", "admin@archway.test", "--scope", "catalog:write", env=env)
    for product_id in ids:
        httpx.put(
            f"{base_url}/api/v1/products/{product_id}/stock", json={"on_hand": SATURATED_STOCK},
            headers={"Authorization": f"Bearer {admin.strip()}"}, timeout=10,
        ).raise_for_status()
    variables = {"token": token, **dict(zip(PRODUCT_VARIABLES, ids, strict=True))}
    place_history(base_url, variables)
    return base_url, variables


def place_history(base_url: str, variables: dict[str, str], orders: int = 30) -> None:
    """Give Alice a history, so `orders_list` reads full pages, and let the saga settle it."""
    headers = {"Authorization": f"Bearer {variables['token']}"}
    for _ in range(orders):
        httpx.post(f"{base_url}/api/v1/orders", headers=headers, timeout=30, json={
            "lines": [{"product_id": variables["product_id"], "quantity": 1}]}).raise_for_status()
    catch_up_seconds(base_url, variables)


def catch_up_seconds(base_url: str, variables: dict[str, str]) -> float:
    """Place one order right after a write load and time it until the read model shows it
    settled: the saga and the projections have worked through everything queued before it."""
    headers = {"Authorization": f"Bearer {variables['token']}"}
    started = time.monotonic()
    placed = httpx.post(f"{base_url}/api/v1/orders", headers=headers, timeout=30, json={
        "lines": [{"product_id": variables["product_id"], "quantity": 1}]})
    placed.raise_for_status()
    url = f"{base_url}/api/v1/orders/{placed.json()['id']}"
    while time.monotonic() - started < CATCH_UP_TIMEOUT_S:
        seen = httpx.get(url, headers=headers, timeout=30)
        if seen.status_code == 200 and seen.json()["status"] != "pending":
            return round(time.monotonic() - started, 3)
        time.sleep(0.05)
    return float("inf")


def start_hello(stack: ExitStack, tmp: Path) -> str:
    port = free_port(HOST)
    uvicorn = f"-m uvicorn bench.hello_app:app --host {HOST} --port {port} --loop uvloop"
    command = [sys.executable, *uvicorn.split(), "--http", "httptools", "--no-access-log"]
    base_url = f"http://{HOST}:{port}"
    start_server(stack, command, dict(os.environ), tmp / "hello.log", f"{base_url}/hello")
    return base_url


def measure(
    case: Case,
    base_url: str,
    variables: dict[str, str],
    connections: int,
    runs: int,
    duration_s: int,
    tmp: Path,
) -> Result:
    """A warm-up, then ``runs`` measured runs; the median of each figure, the worst errors."""
    url = base_url + case.path.format(**variables)
    headers = {name: value.format(**variables) for name, value in case.headers.items()}
    script = None
    if case.script is not None:
        script = tmp / f"{case.name}.lua"
        text = case.script
        for name, value in variables.items():  # not str.format: Lua has braces of its own
            text = text.replace("{" + name + "}", value)
        script.write_text(text)
    wrk_pin = pin(WRK_CORE)
    run_wrk(wrk_pin, url, connections, WARMUP_S, headers, script)
    samples: list[Measurement] = []
    for _ in range(runs):
        samples.append(run_wrk(wrk_pin, url, connections, duration_s, headers, script))
    return Result(
        case=case.name,
        connections=connections,
        req_per_s=statistics.median(s.req_per_s for s in samples),
        p50_ms=statistics.median(s.p50_ms for s in samples),
        p99_ms=statistics.median(s.p99_ms for s in samples),
        errors=max(s.errors for s in samples),
        non_2xx=max(s.non_2xx for s in samples),
        runs=samples,
        catch_up_s=catch_up_seconds(base_url, variables) if case.method != "GET" else None,
    )


def add_ratios(results: list[Result]) -> None:
    hello = {r.connections: r.req_per_s for r in results if r.case == "hello"}
    for result in results:
        baseline = hello.get(result.connections)
        if baseline:
            result.ratio_to_hello = round(result.req_per_s / baseline, 3)


def print_table(results: list[Result]) -> None:
    header = f"{'case':<16}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
    print(f"{header}{'errors':>8}{'non-2xx':>9}{'/hello':>8}")
    for r in results:
        ratio = "-" if r.ratio_to_hello is None else f"{r.ratio_to_hello:.2f}"
        print(
            f"{r.case:<16}{r.connections:>6}{r.req_per_s:>10,.0f}{r.p50_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{r.errors:>8}{r.non_2xx:>9}{ratio:>8}"
        )
    for r in results:
        if r.catch_up_s is not None:
            print(f"{r.case} c={r.connections}: an order placed after the load was settled "
                  f"in the read model {r.catch_up_s} s later")


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args() -> argparse.Namespace:
    names = [case.name for case in CASES]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured runs per point (median)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--connections", type=comma_list, default=["32", "128", "512"])
    parser.add_argument("--cases", type=comma_list, default=names, help=",".join(names))
    parser.add_argument("--database-url", help="SQLAlchemy async URL (default: temp SQLite)")
    args = parser.parse_args()
    unknown = set(args.cases) - set(names)
    if unknown:
        parser.error(f"unknown cases {sorted(unknown)}; known: {names}")
    if not all(c.isdigit() and int(c) >= 2 for c in args.connections):
        parser.error("--connections takes integers >= 2 (wrk runs 2 threads)")
    if args.runs < 1 or args.duration < 1:
        parser.error("--runs and --duration must be >= 1")
    args.connections = [int(c) for c in args.connections]
    return args


def exit_on_signal(signum: int, _frame: object) -> None:
    """Turn SIGTERM/SIGHUP into SystemExit, so the servers are stopped on the way out."""
    sys.exit(128 + signum)


def main() -> None:
    args = parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, exit_on_signal)
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")
    if not pin(SERVER_CORE) or not pin(WRK_CORE):
        print("warning: taskset or cores 0-1 unavailable; not pinned", file=sys.stderr)
    idle_check = busy((SERVER_CORE, WRK_CORE))
    if any(fraction > 0.1 for fraction in idle_check.values()):
        print(f"warning: cores busy before start {idle_check}; noisy figures", file=sys.stderr)
    cases = [case for case in CASES if case.name in args.cases]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="archway-bench-") as tmp_dir, ExitStack() as stack:
        tmp = Path(tmp_dir)
        servers: dict[str, tuple[str, dict[str, str]]] = {}
        if any(case.target == "app" for case in cases):
            servers["app"] = start_app(stack, tmp, args.database_url)
        if any(case.target == "hello" for case in cases):
            servers["hello"] = (start_hello(stack, tmp), {})
        # One case at a time, so the idle server does not compete for core 0; every read case
        # before any write case, whose saga backlog would otherwise run on core 0 during them.
        reads = [case for case in cases if case.method == "GET"]
        writes = [case for case in cases if case.method != "GET"]
        for group in (reads, writes):
            for connections in args.connections:
                for case in group:
                    base_url, variables = servers[case.target]
                    print(f"{case.name} c={connections} ...", file=sys.stderr, flush=True)
                    results.append(measure(
                        case, base_url, variables, connections, args.runs, args.duration, tmp))
    add_ratios(results)
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "runs_per_point": args.runs,
                "duration_s": args.duration,
                "warmup_s": WARMUP_S,
                "core_busy_before_start": idle_check,
                "results": [asdict(result) for result in results],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

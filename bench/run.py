"""Benchmark the monolith against a bare FastAPI route with wrk. See bench/README.md.

.venv/bin/python bench/run.py [--runs 3] [--duration 10] [--connections 32,128,512]
                              [--cases hello,product_by_id,...]
                              [--database sqlite|postgresql|both] [--database-url URL]
                              [--postgres-url SERVER_URL] [--processes N]
                              [--rate-limits off,memory,redis]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from cases import CASES
from machine import busy, layout, pin
from report import Result, Suite, add_ratios, print_side_by_side, print_table
from servers import (
    RATE_LIMIT_MODES,
    ROOT,
    App,
    catch_up_seconds,
    fresh_postgres,
    start_app,
    start_hello,
)
from wrk import Case, run_wrks, wrk_command

RESULTS = ROOT / "bench" / "results" / "latest.json"
WARMUP_S = 3
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432"


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
    catch_up = catch_up_seconds(base_urls[-1], variables) if case.catch_up else None
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
            # compete; every case the saga does not work off before those it does, whose
            # backlog would otherwise run during them.
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
                reads = [case for case in mode_cases if not case.catch_up]
                writes = [case for case in mode_cases if case.catch_up]
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

"""The benchmark's figures: one point's result, a database's suite, and the printed tables."""

from __future__ import annotations

from dataclasses import dataclass

from wrk import Measurement


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


@dataclass
class Suite:
    """Every case on one database."""

    database: str
    processes: int
    layout: str
    results: list[Result]


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

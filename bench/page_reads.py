"""CPU per read of one orders page on PostgreSQL, three ways: Core in ``Database.read``, a
``DriverRead`` in ``Database.read``, and ``Database.fetch`` (the driver, awaited directly).

.venv/bin/python bench/page_reads.py [--rounds 5] [--reads 4000] [--postgres-url URL]

A fresh database gets the bench's seed and order history (a monolith started for it, then
stopped); then, in this process, 32 tasks read Alice's first page of 20 orders ``--reads``
times per way and round, and the CPU time per read is printed (median of the rounds). See
docs/cqrs.md, "The orders page on the driver".
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path

import uvloop
from run import DEFAULT_POSTGRES
from servers import fresh_postgres, start_app

from archway.kernel.db import Database
from archway.orders.queries import _OFFSET_PAGES
from archway.orders.store import order_view

TASKS = 32


async def cpu_per_read(read: Callable[[], Awaitable[object]], reads: int) -> float:
    """Microseconds of this process's CPU per read, ``TASKS`` reading at once."""
    for _ in range(200):  # warm: statements prepared, pool filled
        await read()
    each = reads // TASKS

    async def task() -> None:
        for _ in range(each):
            await read()

    started = time.process_time()
    await asyncio.gather(*(task() for _ in range(TASKS)))
    return 1e6 * (time.process_time() - started) / (each * TASKS)


async def measure(url: str, rounds: int, reads: int) -> None:
    db = Database(url)
    try:
        owner = (await db.read(lambda conn: conn.execute(
            order_view.select().limit(1)).first()))[1]  # type: ignore[index]
        page, _count = _OFFSET_PAGES[True]
        params = {"owner": owner, "limit": 20, "offset": 0}
        core = page.statement  # the same Select, executed by Core
        ways: dict[str, Callable[[], Awaitable[object]]] = {
            "Core in Database.read": lambda: db.read(
                lambda conn: conn.execute(core, params).all()),
            "DriverRead in Database.read": lambda: db.read(lambda conn: page.all(conn, params)),
            "Database.fetch": lambda: db.fetch(page, params),
        }
        figures: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(rounds):
            for name, read in ways.items():
                figures[name].append(await cpu_per_read(read, reads))
        for name, values in figures.items():
            print(f"{name:<30} {statistics.median(values):6.0f} µs of CPU per read "
                  f"(rounds: {', '.join(f'{v:.0f}' for v in values)})")
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reads", type=int, default=4000)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp_dir:
        url = fresh_postgres(stack, args.postgres_url)
        with ExitStack() as app:  # the seed and the history, then the server goes
            start_app(app, Path(tmp_dir), url, [None])
        uvloop.run(measure(url, args.rounds, args.reads))


if __name__ == "__main__":
    main()

"""Benchmark the monolith's gRPC server: GetProduct against a bare grpc.aio handler, and
PlaceOrder, with a Python grpc.aio load generator. See bench/README.md ("gRPC").

.venv/bin/python bench/grpc_run.py [--runs 3] [--duration 10] [--concurrency 32,512]
                                   [--calls get_product,place_order]
                                   [--database sqlite|postgresql] [--postgres-url URL]

The monolith and the bare server are pinned to the first core, this process (the load
generator) to the next one (taskset, when there are two); each point gets a 2 s warm-up, then
``--runs`` runs of ``--duration`` seconds with ``--concurrency`` calls in flight, spread over
one channel per 128 calls (HTTP/2 streams share a connection: 512 streams over four).
Everything targets 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import grpc
import uvloop
from machine import busy, free_port, layout, pin
from run import DEFAULT_POSTGRES
from servers import HOST, catch_up_seconds, fresh_postgres, start_app, stop_server

from archway.proto.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from archway.proto.orders.v1 import orders_pb2, orders_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
WARMUP_S = 2.0
READY_TIMEOUT_S = 30
CALL_TIMEOUT_S = 30
STREAMS_PER_CHANNEL = 128

Call = Callable[[grpc.aio.Channel, int], Awaitable[object]]


def get_product(product_id: str) -> Call:
    request = catalog_pb2.GetProductRequest(id=product_id)

    async def call(channel: grpc.aio.Channel, _n: int) -> object:
        return await catalog_pb2_grpc.CatalogServiceStub(channel).GetProduct(
            request, timeout=CALL_TIMEOUT_S)
    return call


def place_order(product_id: str, token: str, run_id: str) -> Call:
    """One line, a new idempotency key per call (as the REST case sends a new header)."""
    metadata = (("authorization", f"Bearer {token}"),)
    lines = [orders_pb2.LineRequest(product_id=product_id, quantity=1)]

    async def call(channel: grpc.aio.Channel, n: int) -> object:
        return await orders_pb2_grpc.OrderServiceStub(channel).PlaceOrder(
            orders_pb2.PlaceOrderRequest(lines=lines, idempotency_key=f"{run_id}-{n}"),
            metadata=metadata, timeout=CALL_TIMEOUT_S)
    return call


@dataclass
class Sample:
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


async def load(target: str, call: Call, concurrency: int, seconds: float) -> Sample:
    """``concurrency`` callers for ``seconds``; a failed call is counted, not retried."""
    channels = [grpc.aio.insecure_channel(target)
                for _ in range(max(1, -(-concurrency // STREAMS_PER_CHANNEL)))]
    counter = itertools.count()
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def caller(channel: grpc.aio.Channel) -> None:
        nonlocal errors
        while (started := time.perf_counter()) < stop_at:
            try:
                await call(channel, next(counter))
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    try:
        await asyncio.gather(*(caller(channels[n % len(channels)]) for n in range(concurrency)))
    finally:
        for channel in channels:
            await channel.close()
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Sample(round(len(latencies) / seconds), round(quantiles[49] * 1e3, 2),
                  round(quantiles[98] * 1e3, 2), errors)


def measure(target: str, call: Call, concurrency: int, runs: int, seconds: float) -> Sample:
    uvloop.run(load(target, call, concurrency, WARMUP_S))
    samples = [uvloop.run(load(target, call, concurrency, seconds)) for _ in range(runs)]
    return Sample(statistics.median(s.calls_per_s for s in samples),
                  statistics.median(s.p50_ms for s in samples),
                  statistics.median(s.p99_ms for s in samples), max(s.errors for s in samples))


def wait_for_grpc(target: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with grpc.insecure_channel(target) as channel:
                grpc.channel_ready_future(channel).result(timeout=1)
                return
        except grpc.FutureTimeoutError:
            time.sleep(0.2)
    sys.exit(f"nothing answers gRPC on {target}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", default="32,512")
    parser.add_argument("--calls", default="get_product,place_order")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.calls = args.calls.split(",")
    if set(args.calls) - {"get_product", "place_order"} or args.runs < 1:
        parser.error("--calls takes get_product,place_order; --runs at least 1")
    return args


def main() -> None:
    args = parse_args()
    (server_core,), generator_core, where = layout(1)
    if generator_core is not None:
        os.sched_setaffinity(0, {generator_core})  # this process is the load generator
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        url = fresh_postgres(stack, args.postgres_url) if args.database == "postgresql" \
            else f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
        app = start_app(stack, tmp, url, [server_core])
        target = app.grpc_targets[0]
        wait_for_grpc(target)
        product_id = app.variables["product_id"]
        hello_port = free_port(HOST)
        hello = subprocess.Popen(
            [*pin(server_core), sys.executable, str(ROOT / "bench" / "grpc_hello.py"),
             str(hello_port)], start_new_session=True)
        stack.callback(stop_server, hello)
        wait_for_grpc(f"{HOST}:{hello_port}")
        print(f"{args.database}; {where}; cores busy before: {busy((server_core,))}")
        cases: list[tuple[str, str, Call]] = []
        if "get_product" in args.calls:
            cases += [("bare grpc.aio GetProduct", f"{HOST}:{hello_port}", get_product(product_id)),
                      ("archway GetProduct", target, get_product(product_id))]
        if "place_order" in args.calls:
            cases.append(("archway PlaceOrder", target, place_order(
                product_id, app.variables["token"], f"bench-{os.getpid()}-{time.time_ns()}")))
        for concurrency in args.concurrency:
            for name, where_to, call in cases:
                sample = measure(where_to, call, concurrency, args.runs, args.duration)
                line = (f"{name:<26} c={concurrency:<4} {sample.calls_per_s:>8,.0f} calls/s  "
                        f"p50 {sample.p50_ms} ms  p99 {sample.p99_ms} ms  "
                        f"errors {sample.errors}")
                if "PlaceOrder" in name:
                    settled, _ = catch_up_seconds(app.base_urls[0], app.variables)
                    line += f"  caught up {settled} s"
                print(line, flush=True)


if __name__ == "__main__":
    main()

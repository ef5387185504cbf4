"""Benchmark the monolith's gRPC GetProduct against a bare grpc.aio handler, with a Python
grpc.aio load generator. See bench/README.md ("gRPC").

.venv/bin/python bench/grpc_run.py [--duration 5] [--concurrency 32]

Both servers are pinned to core 0, the load generator to core 1 (taskset, when there is one);
each target gets a 2 s warm-up, then ``--duration`` seconds of ``--concurrency`` calls in
flight on one channel. Everything targets 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import grpc
import httpx
import uvloop
from machine import busy, free_port, pin
from run import HOST, SERVER_CORE, WRK_CORE, archway, start_server, stop_server

from archway.proto.catalog.v1 import catalog_pb2, catalog_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
WARMUP_S = 2.0
READY_TIMEOUT_S = 30


async def load(target: str, product_id: str, concurrency: int, seconds: float) -> list[float]:
    """Latencies (s) of every GetProduct answered within ``seconds``; any failure stops it."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = catalog_pb2_grpc.CatalogServiceStub(channel)
        request = catalog_pb2.GetProductRequest(id=product_id)
        latencies: list[float] = []
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            while (started := time.perf_counter()) < stop_at:
                await stub.GetProduct(request, timeout=10)
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies


def measure(target: str, product_id: str, concurrency: int, seconds: float) -> dict[str, float]:
    uvloop.run(load(target, product_id, concurrency, WARMUP_S))
    latencies = uvloop.run(load(target, product_id, concurrency, seconds))
    quantiles = statistics.quantiles(latencies, n=100)
    return {"calls_per_s": round(len(latencies) / seconds), "p50_ms": round(quantiles[49] * 1e3, 2),
            "p99_ms": round(quantiles[98] * 1e3, 2)}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if os.sched_getaffinity(0) != {SERVER_CORE} and WRK_CORE in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {WRK_CORE})  # this process is the load generator
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        env = {**os.environ, "ARCHWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
               "ARCHWAY_ACCESS_LOG": "false", "ARCHWAY_GRPC_PORT": str(free_port(HOST))}
        archway("db", "migrate", env=env)
        archway("seed", env=env)
        port = free_port(HOST)
        start_server(stack, [sys.executable, "-m", "archway.cli", "serve", "monolith", "--host",
                             HOST, "--port", str(port)], env, tmp / "app.log",
                     f"http://{HOST}:{port}/readyz")
        products = httpx.get(f"http://{HOST}:{port}/api/v2/products", params={"limit": 1})
        product_id = str(products.json()["data"][0]["id"])
        hello_port = free_port(HOST)
        hello = subprocess.Popen(
            [*pin(SERVER_CORE), sys.executable, str(ROOT / "bench" / "grpc_hello.py"),
             str(hello_port)], start_new_session=True)
        stack.callback(stop_server, hello)
        wait_for_grpc(f"{HOST}:{hello_port}")
        print(f"cores busy before: {busy((SERVER_CORE, WRK_CORE))}")
        for name, target in (("bare grpc.aio GetProduct", f"{HOST}:{hello_port}"),
                             ("archway GetProduct", f"{HOST}:{env['ARCHWAY_GRPC_PORT']}")):
            figures = measure(target, product_id, args.concurrency, args.duration)
            print(f"{name:<26} c={args.concurrency}  {figures}")


if __name__ == "__main__":
    main()

"""A real ``archway serve monolith`` process on a free port, migrated and seeded."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

ARCHWAY = str(Path(sys.executable).parent / "archway")

UNREACHED_RATE_LIMITS = {
    f"ARCHWAY_RATE_LIMIT_{plan}_{cls}": "1000000"
    for plan in ("ANONYMOUS", "DEFAULT", "PARTNER") for cls in ("READS", "WRITES", "AUTH")}
"""For servers whose tests are not about rate limits: every request goes through the limits
(on, as deployed), none is refused for its rate (tests/http/test_rate_limits.py and
test_rate_limits_process.py judge the limits)."""


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    env: dict[str, str]

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.env['ARCHWAY_GRPC_PORT']}"

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [ARCHWAY, *args], env=self.env, capture_output=True, text=True, timeout=120,
            check=True,
        )
        return done.stdout

    def tokens(self, asked: dict[str, tuple[str, str]]) -> dict[str, str]:
        """For each name, an access token for (email, scopes): what ``archway token`` prints,
        issued in this process with the server's key from its database (one CLI process per
        token costs a second or two of CPU each)."""
        from archway.config import load_settings
        from archway.topologies.operations import dev_token

        settings = load_settings(database_url=self.env["ARCHWAY_DATABASE_URL"],
                                 issuer=self.env["ARCHWAY_ISSUER"])

        async def issue() -> dict[str, str]:
            return {name: await dev_token(settings, email, scopes.split(), None)
                    for name, (email, scopes) in asked.items()}

        with ThreadPoolExecutor(1) as thread:  # a loop of its own, whatever runs in this one
            return thread.submit(asyncio.run, issue()).result(timeout=60)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving_monolith(
    env: dict[str, str], port: int, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``archway serve monolith`` on ``port`` until the block ends, once it answers ``/readyz``;
    the block gets the process, the leader of its own process group (granian's supervisor and
    its worker), which the block may kill.

    Its log goes to ``log_path``: a pipe nobody reads fills up and stalls the server. Its gRPC
    server takes a free port too, unless ``env`` names one (``ARCHWAY_GRPC_PORT``)."""
    env = {"ARCHWAY_GRPC_PORT": str(free_port()), **env}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [ARCHWAY, "serve", "monolith", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not become ready: " + log_path.read_text())
                time.sleep(0.2)
            yield process
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    """Send ``sig`` to the server's whole process group, then SIGKILL it if it lingers."""
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=10)
    except ProcessLookupError:
        return  # the group is gone already
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def monolith_on_fresh_database(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, name: str, **extra_env: str
) -> Iterator[RunningServer]:
    """``archway serve monolith`` on a free HTTP and a free gRPC port, on a database of its own
    beside the suite's (a file on SQLite; on PostgreSQL ``<suite's>_<name>``, dropped
    afterwards), migrated and seeded; ``extra_env`` adds to or overrides its environment."""
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp(name) / f'{name}.db'}"
    else:
        url = _create_postgres_database(database_url, f"_{name}")
    port = free_port()
    env = {
        **os.environ, "ARCHWAY_DATABASE_URL": url, "ARCHWAY_ISSUER": f"http://127.0.0.1:{port}",
        "ARCHWAY_ACCESS_LOG": "false", "ARCHWAY_ARGON2_MEMORY_KIB": "1024",
        **UNREACHED_RATE_LIMITS,
        "ARCHWAY_GRPC_PORT": str(free_port()), **extra_env,
    }
    server = RunningServer(f"http://127.0.0.1:{port}", env)
    try:
        server.cli("db", "migrate")
        server.cli("seed")
        with serving_monolith(env, port, tmp_path_factory.mktemp(f"{name}-log") / "server.log"):
            yield server
    finally:
        if not database_url.startswith("sqlite"):
            _psql(url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@contextmanager
def replica(server: RunningServer, log_path: Path, **extra_env: str) -> Iterator[RunningServer]:
    """Another ``archway serve monolith`` on ``server``'s database and issuer (its tokens work
    here too), on free ports of its own, with ``extra_env`` on top of ``server``'s environment;
    stopped when the block ends. (The first process keeps relaying; see test_two_processes.)"""
    port = free_port()
    env = {**server.env, "ARCHWAY_GRPC_PORT": str(free_port()), **extra_env}
    with serving_monolith(env, port, log_path):
        yield RunningServer(f"http://127.0.0.1:{port}", env)


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with monolith_on_fresh_database(database_url, tmp_path_factory, "e2e") as running:
        yield running


def _psql(url: str, statement: str) -> None:
    parsed = make_url(url)
    subprocess.run(
        ["psql", "-q", "-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432),
         "-U", parsed.username or "postgres", "-d", "postgres", "-c", statement],
        check=True, timeout=60,
    )


def _create_postgres_database(url: str, suffix: str) -> str:
    parsed = make_url(url)
    name = f"{parsed.database}{suffix}"
    _psql(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _psql(url, f'CREATE DATABASE "{name}"')
    return parsed.set(database=name).render_as_string(hide_password=False)

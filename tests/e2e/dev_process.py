"""`archway dev` as a newcomer runs it (`make run`): a real process on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.conftest import ARCHWAY, _create_postgres_database, _psql, free_port

BANNER_END = "Token for curl:"


@dataclass
class DevProcess:
    process: subprocess.Popen[str]
    base_url: str
    env: dict[str, str]
    cwd: Path
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def banner(self, timeout: float = 60) -> list[str]:
        """The banner's lines, once all of them are out; fails if the process stops first."""
        deadline = time.monotonic() + timeout
        while not any(line.startswith(BANNER_END) for line in self.stdout):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"no banner (exit {self.process.poll()}): {self.stdout} {self.stderr[-8:]}")
            time.sleep(0.05)
        return list(self.stdout)


def _drain(stream: object, into: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.append(line.rstrip("\n"))


@contextmanager
def fresh_database(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, suffix: str
) -> Iterator[str]:
    """An empty database beside the suite's, of the same kind; dropped afterwards."""
    if database_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp(suffix) / 'archway.db'}"
        return
    url = _create_postgres_database(database_url, f"_{suffix}")
    try:
        yield url
    finally:
        from sqlalchemy.engine import make_url

        _psql(url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@contextmanager
def archway_dev(database_url: str, cwd: Path, **extra_env: str) -> Iterator[DevProcess]:
    """``archway dev`` with ``ARCHWAY_HTTP_PORT`` set to a free port; stopped afterwards."""
    port = free_port()
    env = {
        **os.environ, "ARCHWAY_DATABASE_URL": database_url, "ARCHWAY_HTTP_PORT": str(port),
        "ARCHWAY_ISSUER": f"http://127.0.0.1:{port}", "ARCHWAY_ACCESS_LOG": "false",
        "ARCHWAY_ARGON2_MEMORY_KIB": "1024", "ARCHWAY_GRPC_PORT": str(free_port()), **extra_env,
    }
    process = subprocess.Popen(
        [ARCHWAY, "dev"], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )
    dev = DevProcess(process, f"http://127.0.0.1:{port}", env, cwd)
    readers = [threading.Thread(target=_drain, args=(process.stdout, dev.stdout), daemon=True),
               threading.Thread(target=_drain, args=(process.stderr, dev.stderr), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        yield dev
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        for reader in readers:
            reader.join(timeout=5)

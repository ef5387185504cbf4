"""`archway dev` (what `make run` runs): the port it is told, the banner only once it serves,
one clear line and a non-zero exit when it cannot start, and a token that carries a customer
through their whole journey."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.e2e.conftest import ARCHWAY, free_port
from tests.e2e.dev_process import DevProcess, archway_dev, fresh_database

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dev(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevProcess]:
    with (
        fresh_database(database_url, tmp_path_factory, "dev") as url,
        archway_dev(url, tmp_path_factory.mktemp("dev-cwd")) as process,
    ):
        process.banner()
        yield process


def test_dev_listens_on_archway_http_port_and_says_so(dev: DevProcess) -> None:
    banner = dev.banner()
    assert banner[0].startswith(f"Archway monolith on {dev.base_url} ")
    for path in ("/api/v1/products", "/api/v2/products", "/docs", "/redoc", "/graphql",
                 "/openapi/v1.json", "/openapi/v2.json", "/.well-known/jwks.json", "/healthz",
                 "/readyz", "/metrics"):
        assert any(line.endswith(dev.base_url + path) for line in banner), path
    assert httpx.get(dev.base_url + "/readyz", timeout=10).status_code == 200


def test_the_banner_comes_only_once_the_server_answers(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with (
        fresh_database(database_url, tmp_path_factory, "dev_banner") as url,
        archway_dev(url, tmp_path_factory.mktemp("dev-banner-cwd")) as process,
    ):
        deadline = time.monotonic() + 60
        while not process.stdout and process.process.poll() is None:
            assert time.monotonic() < deadline, process.stderr[-5:]
            time.sleep(0.01)
        # The first line says the server is up: it must be, at once, with no retry.
        assert process.stdout[0].startswith("Archway monolith on ")
        assert httpx.get(process.base_url + "/healthz", timeout=10).status_code == 200


def test_the_suggested_token_carries_a_customer_through_their_journey(dev: DevProcess) -> None:
    (hint,) = [line for line in dev.banner() if line.startswith("Token for curl:")]
    command = shlex.split(hint.removeprefix("Token for curl:"))
    assert command[0].endswith("archway")
    token = subprocess.run(
        [ARCHWAY, *command[1:]], env=dev.env, capture_output=True, text=True, timeout=120,
        check=True).stdout.strip()
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=dev.base_url, timeout=10, headers=auth) as http:
        me = http.get("/api/v2/users/me")
        assert me.status_code == 200
        product = http.get("/api/v2/products?limit=1").json()["data"][0]["id"]
        placed = http.post(
            "/api/v2/orders", json={"lines": [{"product_id": product, "quantity": 1}]})
        assert placed.status_code == 202, placed.text
        fresh = {"Consistency-Token": placed.headers["consistency-token"]}
        assert http.get("/api/v2/orders", headers=fresh).status_code == 200
        assert http.get(f"/api/v2/orders/{placed.json()['id']}", headers=fresh).status_code == 200
        report = http.get(f"/api/v2/reports/customers/{me.json()['id']}", headers=fresh)
        assert report.status_code == 200, report.text


def test_dev_serves_grpc_on_its_port_and_says_so(dev: DevProcess) -> None:
    grpc_address = f"127.0.0.1:{dev.env['ARCHWAY_GRPC_PORT']}"
    (line,) = [line for line in dev.banner() if line.strip().startswith("gRPC")]
    assert grpc_address in line
    links = httpx.get(dev.base_url + "/", timeout=10).json()["links"]
    assert {"rel": "grpc", "title": "gRPC", "href": f"grpc://{grpc_address}"} in links
    with grpc.insecure_channel(grpc_address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_a_busy_grpc_port_is_one_line_and_a_failure(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_dev({"ARCHWAY_HTTP_PORT": str(free_port()), "ARCHWAY_GRPC_PORT": str(port),
                        "ARCHWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"},
                       tmp_path)
    assert_one_clear_line(done, f"127.0.0.1:{port}", "in use")


def test_the_landing_page_of_dev_lists_the_demo_accounts(dev: DevProcess) -> None:
    body = httpx.get(dev.base_url + "/", timeout=10).json()
    emails = [account["email"] for account in body["demo_accounts"]]
    assert emails == ["admin@archway.test", "alice@archway.test", "bob@archway.test"]
    page = httpx.get(dev.base_url + "/", headers={"Accept": "text/html"}, timeout=10).text
    assert "archway-alice" in page and 'href="/docs"' in page


def run_dev(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ARCHWAY, "dev"], cwd=cwd,
        env={**_without_archway_settings(), "ARCHWAY_GRPC_PORT": str(free_port()), **env},
        capture_output=True, text=True, timeout=120, check=False)


def _without_archway_settings() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ARCHWAY_")}


def assert_one_clear_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode != 0
    assert done.stdout == ""  # no banner, nothing that claims a server is up
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0]


def test_a_busy_port_is_one_line_and_a_failure(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_dev({"ARCHWAY_HTTP_PORT": str(port),
                        "ARCHWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"},
                       tmp_path)
    assert_one_clear_line(done, f"127.0.0.1:{port}", "in use")


@pytest.mark.parametrize("url, words", [
    (f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/archway", ["cannot use the database"]),
    ("postgresql+asyncpg://postgres@127.0.0.1:5432/archway_no_such_db",
     ["cannot use the database", "archway_no_such_db"]),
    ("sqlite+aiosqlite:////no/such/directory/archway.db",
     ["cannot use the database", "unable to open"]),
    ("mysql://root@127.0.0.1/archway", ["ARCHWAY_DATABASE_URL"]),
])
def test_a_database_it_cannot_use_is_one_line_and_a_failure(
    url: str, words: list[str], tmp_path: Path
) -> None:
    done = run_dev({"ARCHWAY_HTTP_PORT": str(free_port()), "ARCHWAY_DATABASE_URL": url}, tmp_path)
    assert_one_clear_line(done, *words)

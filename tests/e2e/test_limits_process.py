"""What the real server (granian, as ``archway serve`` runs it) does with oversized requests:
headers past its bounds are its own 431 before Archway sees them; headers within them, and
bodies of any size, reach Archway, which answers 413 past 1 MiB and a problem for anything it
refuses, with its security headers."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.e2e
MIB = 1024 * 1024


def exchange(server: RunningServer, request: bytes) -> bytes:
    """``request`` sent as is on a new connection; the first bytes of the answer."""
    address = urlsplit(server.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        # the server may answer and close before it has read everything
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        return answer


def get(headers: bytes) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"Connection: close\r\n\r\n"


@pytest.mark.parametrize("headers", [
    pytest.param(b"X-Big: " + b"a" * MIB + b"\r\n", id="one-header-of-1-MiB"),
    pytest.param(b"".join(b"X-H%d: v\r\n" % n for n in range(200)), id="200-headers"),
])
def test_headers_past_the_servers_bounds_are_its_431(
    server: RunningServer, headers: bytes
) -> None:
    answer = exchange(server, get(headers))
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_a_large_header_within_the_bounds_reaches_archway(server: RunningServer) -> None:
    answer = exchange(server, get(b"X-Big: " + b"a" * 64 * 1024 + b"\r\n"))
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert b"x-content-type-options: nosniff" in answer.lower()


def test_a_huge_token_is_a_401_problem(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        answer = http.get("/api/v1/users/me", headers={"Authorization": "Bearer " + "a" * 60_000})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"


def test_bodies_over_1_mib_are_a_413_problem_declared_or_chunked(server: RunningServer) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"a" * 64 * 1024

    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        for content in (b"a" * (MIB + 1), chunks()):
            answer = http.post("/api/v1/users", content=content,
                               headers={"content-type": "application/json"})
            assert answer.status_code == 413, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.headers["x-content-type-options"] == "nosniff"


def test_answers_carry_the_security_headers_and_no_hsts_over_http(
    server: RunningServer,
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        for path in ("/healthz", "/api/v1/products?limit=1", "/docs", "/nowhere"):
            answer = http.get(path)
            assert answer.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
            assert "strict-transport-security" not in answer.headers

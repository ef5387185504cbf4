"""The real Redis the suite's shared rate-limit tests run against (127.0.0.1:6379 unless
``ARCHWAY_TEST_REDIS_URL`` names another; ``.ci/run`` starts it when it is down).

Outside CI a Redis that does not answer skips those tests, loudly, with the reason; in CI
(``CI=true``) it fails them: a test that needs a server here must not pass without it."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest

REDIS_URL = os.environ.get("ARCHWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> str:
    """``REDIS_URL`` once its server answers ``PING``; else skip (fail in CI)."""
    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379),
                                      timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
        if not answer.startswith(b"+PONG"):
            raise OSError(f"it answered {answer!r} to PING")
    except OSError as exc:
        reason = f"Redis at {REDIS_URL} does not answer ({exc})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI needs it (.ci/run starts it)")
        pytest.skip(f"!!! SKIPPED: {reason}: start it with `redis-server --daemonize yes` !!!")
    return REDIS_URL

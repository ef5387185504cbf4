"""Runs a topology's ASGI app under granian (default) or uvicorn, with Archway's JSON logs.

Granian is the default because, on one core at 128 connections, uvicorn's latency tail is
bimodal (p99 over a second for a bare route on the bench machine) while granian's stays in tens
of milliseconds at about the same throughput; ``ARCHWAY_HTTP_SERVER=uvicorn`` switches back.
The app is built in the serving process by an app factory from the environment's settings.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

from archway.config import ConfigurationError, Settings, load_settings
from archway.kernel.observability.logging import configure_logging

if TYPE_CHECKING:
    from fastapi import FastAPI

_JSON_LOGS = {  # granian's own lines, in the same JSON shape as ours
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "archway.kernel.observability.logging.EcsJsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
    },
    "loggers": {
        "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


def monolith_app() -> FastAPI:
    """App factory for the serving process (granian imports it by name); its lifespan also
    runs the gRPC server, in this process (grpcio is first imported here, after the fork)."""
    from archway.topologies.monolith import create_app

    settings = load_settings()
    configure_logging(settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the start-up schema check is quiet
    return create_app(settings, serve_grpc=True)


def serve(settings: Settings, host: str, port: int, *, announce: str | None = None) -> None:
    """Serve until stopped; ``announce`` is printed on stdout once the app answers.

    A port that cannot be bound (HTTP's, or gRPC's: ``ARCHWAY_GRPC_HOST`` and
    ``ARCHWAY_GRPC_PORT``) raises :class:`ConfigurationError` before anything starts.
    The announcement is waited for by a child process, not a thread: granian forks its workers,
    and a fork while another thread holds a lock (an import's, logging's) can hang the worker.
    """
    ensure_can_listen(host, port)
    ensure_can_listen(settings.grpc_host or settings.http_host, settings.grpc_port)
    announcer = None
    if announce is not None:
        announcer = subprocess.Popen(  # inherits stdout; exits when this process goes
            [sys.executable, "-m", "archway.topologies.announce",
             f"{_local_address(host)}:{port}", str(os.getpid()), announce])
    try:
        if settings.http_server == "uvicorn":
            _serve_uvicorn(settings, host, port)
        else:
            _serve_granian(settings, host, port)
    finally:
        if announcer is not None:
            announcer.terminate()
            announcer.wait(timeout=10)


def ensure_can_listen(host: str, port: int) -> None:
    """Bind ``host:port`` once, as the server will, so that a busy port or an unknown address
    is one clear error here rather than a server's traceback after a banner."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
            probe.bind(address)
    except OSError as exc:
        reason = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
        raise ConfigurationError(f"cannot listen on {host}:{port}: {reason}") from None


def _local_address(host: str) -> str:
    """Where this machine reaches a server bound to ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _serve_granian(settings: Settings, host: str, port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    Granian(
        "archway.topologies.runner:monolith_app", factory=True, address=host, port=port,
        # Websockets carry GraphQL's subscriptions (graphql-transport-ws at /graphql).
        interface=Interfaces.ASGI, workers=1, loop=Loops.uvloop, websockets=True,
        backlog=2048, log_dictconfig=_JSON_LOGS, log_access=False,
    ).serve()


def _serve_uvicorn(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    configure_logging(settings.log_level)
    config = uvicorn.Config(
        monolith_app, factory=True, host=host, port=port, loop="uvloop", http="httptools",
        log_config=None, access_log=False, lifespan="on", backlog=2048, timeout_keep_alive=30,
        # Forwarded headers are ARCHWAY_TRUSTED_PROXIES' to believe (kernel.proxies), not
        # uvicorn's, whose default would trust X-Forwarded-For from 127.0.0.1.
        proxy_headers=False,
    )
    uvicorn.Server(config).run()

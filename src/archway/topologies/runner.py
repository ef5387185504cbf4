"""Runs a topology's ASGI app under granian (default) or uvicorn, with Archway's JSON logs.

Granian is the default because, on one core at 128 connections, uvicorn's latency tail is
bimodal (p99 over a second for a bare route on the bench machine) while granian's stays in tens
of milliseconds at about the same throughput; ``ARCHWAY_HTTP_SERVER=uvicorn`` switches back.
The app is built in the serving process by an app factory from the environment's settings.
"""

from __future__ import annotations

import logging

from archway.config import Settings, load_settings
from archway.kernel.observability.logging import configure_logging

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


def monolith_app():  # type: ignore[no-untyped-def]
    """App factory for the serving process (granian imports it by name)."""
    from archway.topologies.monolith import create_app

    settings = load_settings()
    configure_logging(settings.log_level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the start-up schema check is quiet
    return create_app(settings)


def serve(settings: Settings, host: str, port: int) -> None:
    if settings.http_server == "uvicorn":
        _serve_uvicorn(settings, host, port)
    else:
        _serve_granian(settings, host, port)


def _serve_granian(settings: Settings, host: str, port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    Granian(
        "archway.topologies.runner:monolith_app", factory=True, address=host, port=port,
        interface=Interfaces.ASGI, workers=1, loop=Loops.uvloop, websockets=False,
        backlog=2048, log_dictconfig=_JSON_LOGS, log_access=False,
    ).serve()


def _serve_uvicorn(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    configure_logging(settings.log_level)
    config = uvicorn.Config(
        monolith_app, factory=True, host=host, port=port, loop="uvloop", http="httptools",
        log_config=None, access_log=False, lifespan="on", backlog=2048, timeout_keep_alive=30,
    )
    uvicorn.Server(config).run()

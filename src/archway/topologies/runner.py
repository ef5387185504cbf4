"""Runs an ASGI app with uvicorn (uvloop + httptools) and Archway's JSON logs."""

from __future__ import annotations

import uvicorn

from archway.config import Settings
from archway.kernel.observability.logging import configure_logging


def serve(settings: Settings, host: str, port: int) -> None:
    from archway.topologies.monolith import create_app

    configure_logging(settings.log_level)
    config = uvicorn.Config(
        lambda: create_app(settings), factory=True, host=host, port=port, loop="uvloop",
        http="httptools", log_config=None, access_log=False, lifespan="on",
        backlog=2048, timeout_keep_alive=30,
    )
    uvicorn.Server(config).run()

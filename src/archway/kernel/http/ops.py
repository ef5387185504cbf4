"""Service defaults every HTTP process exposes: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, FastAPI
from starlette.responses import Response

from archway.kernel.http.responses import JsonResponse
from archway.kernel.observability.metrics import HttpMetrics

ReadinessCheck = Callable[[], Awaitable[bool]]
ReadinessDetail = Callable[[], Awaitable[Mapping[str, object]]]
"""Something ``/readyz`` reports without being unready for it: a mapping with a ``status``
(``ok`` or ``degraded``) and whatever else explains it (e.g. the parked dead letters)."""

_log = logging.getLogger("archway.http.ops")


def build_ops_router(
    metrics: HttpMetrics,
    checks: Mapping[str, ReadinessCheck],
    details: Mapping[str, ReadinessDetail] | None = None,
) -> APIRouter:
    router = APIRouter(tags=["operations"], include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> Response:
        """Liveness: the process answers. Never touches dependencies."""
        return JsonResponse({"status": "ok"})

    @router.get("/readyz")
    async def readyz() -> Response:
        """Readiness: every dependency this process needs answers, and its background parts
        (the outbox relays, as ``relay:<context>``) are alive and not failing for long.
        ``details`` say what is degraded without making the process unready: ``status`` is
        then ``degraded``, still with 200."""
        results = {name: await check() for name, check in checks.items()}
        ready = all(results.values())
        body: dict[str, object] = {
            "status": "ready" if ready else "unavailable",
            "checks": {name: "ok" if ok else "failing" for name, ok in results.items()}}
        if details:
            reported = {name: await _detail(name, detail) for name, detail in details.items()}
            body["details"] = reported
            if ready and any(d.get("status") != "ok" for d in reported.values()):
                body["status"] = "degraded"
        return JsonResponse(body, 200 if ready else 503)

    @router.get("/metrics")
    async def prometheus() -> Response:
        await metrics.refresh()
        payload, content_type = metrics.render()
        return Response(payload, headers={"content-type": content_type})

    return router


async def _detail(name: str, detail: ReadinessDetail) -> Mapping[str, object]:
    try:
        return await detail()
    except Exception:  # noqa: BLE001 - the checks above say whether a dependency is down
        _log.warning("readiness detail %s could not be read", name, exc_info=True)
        return {"status": "unknown"}


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Put a router's routes straight on the app, in order.

    ``include_router`` keeps each router as a lazily resolved branch that is re-matched on every
    request; on this FastAPI that matching cost a third of a cheap request's time in profiles.
    Routers here carry their full prefix already, so their routes can stand on the app as they are.
    """
    app.router.routes.extend(router.routes)

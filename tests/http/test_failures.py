"""A failure anywhere is a 500 problem with a request id, its traceback is in the log only, and
the access log and metrics record the status the client actually got."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from archway.config import Settings
from archway.kernel.db import Database
from archway.kernel.http.policies import DeprecationPolicy, HttpPolicies
from archway.kernel.observability.metrics import HttpMetrics
from archway.topologies.monolith import Monolith, create_app

SECRET = "s3cr3t-detail-of-the-bug"


@pytest.fixture
async def logged_client(
    app: object, settings: Settings, graph: Monolith, database: Database
) -> AsyncIterator[httpx.AsyncClient]:
    """The monolith with its access log on, and a route that crashes (the graph is the
    session's, already started by ``app``)."""
    application = create_app(settings.model_copy(update={"access_log": True}), graph=graph)

    async def crash() -> None:
        raise RuntimeError(SECRET)

    application.add_api_route("/api/v1/crash", crash, methods=["GET"])
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def requests_counted(metrics: HttpMetrics, route: str, method: str, status: int) -> float:
    labels = {"route": route, "method": method, "status": str(status), "protocol": "http"}
    return metrics.registry.get_sample_value("archway_http_requests_total", labels) or 0.0


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.ecs for r in caplog.records if r.name == "archway.access"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("path", "method", "route", "status"), [
    ("/healthz", "GET", "/healthz", 200),
    ("/healthz", "HEAD", "/healthz", 200),
    ("/api/v1/products/%E2%82%AC", "GET", "/api/v1/products/{product_id}", 404),
    ("/api/v1/products/x%3E%3B%20rel%3D%22evil", "GET", "/api/v1/products/{product_id}", 404),
    ("/api/v1/products/abc", "PUT", "/api/v1/products/{product_id}", 405),
    ("/api/v1/crash", "GET", "/api/v1/crash", 500),
])
async def test_the_access_log_and_metrics_record_the_status_sent(
    logged_client: httpx.AsyncClient, graph: Monolith, caplog: pytest.LogCaptureFixture,
    path: str, method: str, route: str, status: int,
) -> None:
    caplog.set_level(logging.INFO, logger="archway.access")
    before = requests_counted(graph.metrics, route, method, status)
    response = await logged_client.request(method, path)
    assert response.status_code == status
    (line,) = access_lines(caplog)
    assert line["http.response.status_code"] == status
    assert line["http.request.method"] == method
    assert line["http.request.id"] == response.headers["x-request-id"]
    assert requests_counted(graph.metrics, route, method, status) == before + 1


async def test_a_crashing_route_is_a_500_problem_and_an_error_log_with_the_traceback(
    logged_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await logged_client.get("/api/v1/crash", headers={"X-Request-ID": "crash-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "crash-1"
    body = response.json()
    assert body["request_id"] == "crash-1" and body["status"] == 500
    assert SECRET not in response.text and "Traceback" not in response.text
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]
    assert response.headers["content-security-policy"] == (
        "default-src 'none'; frame-ancestors 'none'")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].name == "archway.http"
    assert errors[0].exc_info is not None and SECRET in str(errors[0].exc_info[1])


# -- the policies' own failures, on a bare app ---------------------------------------------

async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _silent(scope: Scope, receive: Receive, send: Send) -> None:
    """An app with a bug: it returns without answering."""


def _policies(app: Any, metrics: HttpMetrics, sunset: str = "Sat, 01 Jan 2028 00:00:00 GMT"
              ) -> HttpPolicies:
    return HttpPolicies(app, metrics=metrics, access_log=True,
                        deprecation=DeprecationPolicy(deprecated_at=1, sunset=sunset))


@pytest.mark.parametrize(("app", "sunset"), [
    (_not_found, "Sat, 01 Jan 2028 \u20ac"),  # decorating the answer fails (not Latin-1)
    (_silent, "Sat, 01 Jan 2028 00:00:00 GMT"),  # the app never answers
])
async def test_a_failure_while_the_policies_build_the_answer_is_a_500_problem(
    app: Any, sunset: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    metrics = HttpMetrics()
    outer = FastAPI()  # its ServerErrorMiddleware would answer plain text, were anything left
    outer.add_middleware(HttpPolicies, metrics=metrics, access_log=True,
                         deprecation=DeprecationPolicy(deprecated_at=1, sunset=sunset))
    outer.router.routes.clear()
    outer.router.default = app  # every path reaches the app under test
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/api/v1/anything", headers={"X-Request-ID": "fail-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "fail-1"
    assert response.json()["request_id"] == "fail-1"
    assert "link" not in response.headers
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]  # once
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    (line,) = access_lines(caplog)
    assert line["http.response.status_code"] == 500
    assert [r.name for r in caplog.records if r.levelno >= logging.ERROR] == ["archway.http"]
    assert requests_counted(metrics, "<unmatched>", "GET", 500) == 1

"""A fast handler that fails after it started its work answers once and hides nothing.

Each hot route's shared code (the service or query the fast handler and the route both call)
is replaced by one that counts its calls and then raises. The request must run it exactly once
(never again through FastAPI), answer what the route answers for the same fault (an Archway
error's problem, or a 500 problem with the request id), and an unexpected error must be logged
at error level with its traceback; an expected refusal is not an error.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from archway.config import Settings
from archway.kernel.errors import Conflict
from archway.topologies.monolith import Monolith, create_app
from tests.conftest import ALICE, AuthHeaders
from tests.ordering import stocked_product


@dataclass(frozen=True)
class HotRoute:
    method: str
    path: str  # "{product}" is replaced by a stocked product's id
    service: str  # the graph's attribute the route calls…
    use_case: str  # …and its method, which the fault replaces
    scopes: str = ""
    body: dict[str, Any] | None = None


HOT_ROUTES = [
    HotRoute("GET", "/api/v1/products/{product}", "catalog", "get_product"),
    HotRoute("GET", "/api/v2/products", "catalog", "list_products"),
    HotRoute("GET", "/api/v1/users/me", "identity", "me", "profile"),
    HotRoute("GET", "/api/v2/orders", "order_queries", "list_orders", "orders:read"),
    HotRoute("POST", "/api/v1/orders", "orders", "place", "orders:write",
             {"lines": [{"product_id": "{product}", "quantity": 1}]}),
]


class Boom(Exception):
    """A fault no one expects."""


@pytest.fixture
async def routed_only(settings: Settings, graph: Monolith) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a twin app without the lane, on the same graph: the route's own answer."""
    twin = create_app(settings.model_copy(update={"fast_lane": False}), graph=graph)
    transport = httpx.ASGITransport(app=twin)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def fault(monkeypatch: pytest.MonkeyPatch, graph: Monolith, route: HotRoute,
          error: Exception) -> list[int]:
    """Replace the route's use case by one that counts its calls and raises ``error``."""
    calls: list[int] = []

    async def failing(*_args: object, **_kwargs: object) -> object:
        calls.append(1)
        raise error

    monkeypatch.setattr(getattr(graph, route.service), route.use_case, failing)
    return calls


async def send(client: httpx.AsyncClient, route: HotRoute, product: str,
               headers: dict[str, str]) -> httpx.Response:
    path = route.path.replace("{product}", product)
    if route.body is None:
        return await client.request(route.method, path, headers=headers)
    line = {**route.body["lines"][0], "product_id": product}
    return await client.request(route.method, path, headers=headers, json={"lines": [line]})


def without_request_id(response: httpx.Response) -> tuple[int, str, dict[str, Any]]:
    body = response.json()
    assert body.pop("request_id") == response.headers["x-request-id"]
    return response.status_code, response.headers["content-type"], body


@pytest.mark.parametrize("route", HOT_ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_an_unexpected_error_after_the_work_started_runs_once_and_is_a_logged_500(
    route: HotRoute, graph: Monolith, client: httpx.AsyncClient,
    routed_only: httpx.AsyncClient, auth_headers: AuthHeaders,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    product = await stocked_product(graph, "FAIL-1", on_hand=5)
    headers = await auth_headers(ALICE[0], route.scopes) if route.scopes else {}
    calls = fault(monkeypatch, graph, route, Boom("the shared code failed"))

    with caplog.at_level(logging.ERROR):
        fast = await send(client, route, product, headers)
    assert len(calls) == 1  # never run a second time through FastAPI
    assert fast.status_code == 500
    assert fast.headers["content-type"] == "application/problem+json"
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert [type(r.exc_info[1]) for r in logged] == [Boom]  # type: ignore[index]

    calls.clear()
    routed = await send(routed_only, route, product, headers)
    assert len(calls) == 1
    assert without_request_id(fast) == without_request_id(routed)


@pytest.mark.parametrize("route", HOT_ROUTES, ids=lambda r: f"{r.method} {r.path}")
async def test_an_archway_error_after_the_work_started_runs_once_and_is_its_problem(
    route: HotRoute, graph: Monolith, client: httpx.AsyncClient,
    routed_only: httpx.AsyncClient, auth_headers: AuthHeaders,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    product = await stocked_product(graph, "FAIL-2", on_hand=5)
    headers = await auth_headers(ALICE[0], route.scopes) if route.scopes else {}
    calls = fault(monkeypatch, graph, route, Conflict("It changed meanwhile."))

    with caplog.at_level(logging.DEBUG):
        fast = await send(client, route, product, headers)
    assert len(calls) == 1
    assert fast.status_code == 409
    assert fast.json()["detail"] == "It changed meanwhile."
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # a refusal, no error

    calls.clear()
    routed = await send(routed_only, route, product, headers)
    assert len(calls) == 1
    assert without_request_id(fast) == without_request_id(routed)

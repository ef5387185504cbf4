"""The conventions of PRODUCT.md section 2 that every route shares."""

from __future__ import annotations

import asyncio

import httpx

from archway.kernel.http.idempotency import request_hash
from archway.kernel.http.idempotency_store import KeyedRequest
from archway.topologies.monolith import Monolith
from tests.conftest import AuthHeaders

REGISTRATION = {"email": "idem@example.com", "password": "long enough", "name": "Idem"}


async def test_every_response_carries_request_id_and_version(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.headers["x-request-id"]
    assert response.headers["api-version"] == "1"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/users/me", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"


async def test_a_hostile_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "x" * 300})
    assert response.headers["x-request-id"] != "x" * 300


async def test_v1_is_deprecated_with_a_successor(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/users/me?x=1")
    assert response.headers["api-version"] == "1"
    assert response.headers["deprecation"].startswith("@")
    assert response.headers["sunset"].endswith("GMT")
    assert response.headers["link"] == '</api/v2/users/me?x=1>; rel="successor-version"'


async def test_v2_is_not_deprecated(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v2/users/me")
    assert response.headers["api-version"] == "2"
    assert "deprecation" not in response.headers and "sunset" not in response.headers


async def test_unversioned_paths_take_the_header(client: httpx.AsyncClient) -> None:
    default = await client.get("/api/users/me")
    assert default.headers["api-version"] == "1" and default.status_code == 401
    assert default.json()["instance"] == "/api/users/me"
    v2 = await client.get("/api/users/me", headers={"API-Version": "2"})
    assert v2.headers["api-version"] == "2" and v2.status_code == 401
    assert "API-Version" in v2.headers["vary"]


async def test_an_unknown_api_version_header_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/users/me", headers={"API-Version": "3"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail", "instance", "request_id"}


async def test_unknown_paths_and_methods_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert (await client.get("/api/v3/users/me")).status_code == 404
    wrong = await client.put("/api/v1/users/me")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/users", content=b'{"email": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["status"] == 400


async def test_a_body_over_one_mebibyte_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    response = await client.post(
        "/api/v1/users", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["status"] == 413


async def test_a_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks():  # no Content-Length: the limit must count what arrives
        for _ in range(20):
            yield b"x" * 65_536

    response = await client.post(
        "/api/v1/users", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_limit_out_of_range_is_422_with_the_parameter_name(
    client: httpx.AsyncClient, auth_headers: AuthHeaders
) -> None:
    headers = await auth_headers("admin@archway.test", "users:read")
    for limit in ("0", "101", "abc"):
        response = await client.get(f"/api/v1/users?limit={limit}", headers=headers)
        assert response.status_code == 422
        assert response.json()["errors"][0]["pointer"] == "limit"


async def test_a_bad_cursor_is_422(client: httpx.AsyncClient, auth_headers: AuthHeaders) -> None:
    headers = await auth_headers("admin@archway.test", "users:read")
    for cursor in ("garbage!", ""):  # an empty one is no cursor the API returned either
        response = await client.get(f"/api/v2/users?cursor={cursor}", headers=headers)
        assert response.status_code == 422, cursor
        assert response.json()["errors"][0]["pointer"] == "cursor"
    for path in ("/api/v2/products?cursor=", "/api/v2/products?limit=5&cursor="):  # fast lane
        assert (await client.get(path)).status_code == 422, path


async def test_idempotency_replays_the_first_answer(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "key-1"}
    first = await client.post("/api/v1/users", json=REGISTRATION, headers=headers)
    again = await client.post("/api/v1/users", json=REGISTRATION, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]


async def test_idempotency_refuses_another_body_with_the_same_key(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "key-2"}
    await client.post("/api/v1/users", json=REGISTRATION, headers=headers)
    other = await client.post(
        "/api/v1/users", json={**REGISTRATION, "name": "Other"}, headers=headers)
    assert other.status_code == 422


async def test_idempotency_refuses_a_retry_while_in_flight(
    client: httpx.AsyncClient, graph: Monolith
) -> None:
    body = b'{"email": "x@example.com"}'
    digest = request_hash({"method": "POST", "path": "/api/v1/users", "headers": [
        (b"content-type", b"application/json")]}, body)
    another_process = KeyedRequest("ip:127.0.0.1", "key-3", digest)
    await graph.db.write(lambda conn: graph.idempotency.claim_within(conn, another_process))
    response = await client.post(
        "/api/v1/users", content=body,
        headers={"Idempotency-Key": "key-3", "content-type": "application/json"})
    assert response.status_code == 409


async def test_concurrent_retries_create_one_resource(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "key-4"}
    responses = await asyncio.gather(*(
        client.post("/api/v1/users", json=REGISTRATION, headers=headers) for _ in range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1


async def test_an_invalid_idempotency_key_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/users", json=REGISTRATION, headers={"Idempotency-Key": "x" * 300})
    assert response.status_code == 400


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    metrics = (await client.get("/metrics")).text
    assert "archway_http_requests_total" in metrics
    assert 'route="/healthz"' in metrics


async def test_docs_pages_and_versioned_openapi(client: httpx.AsyncClient) -> None:
    v1 = (await client.get("/openapi/v1.json")).json()
    v2 = (await client.get("/openapi/v2.json")).json()
    assert all(path.startswith("/api/v1/") for path in v1["paths"])
    assert all(path.startswith("/api/v2/") for path in v2["paths"])
    assert "/api/v1/users/me" in v1["paths"]
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "/openapi/v1.json" in docs.text
    assert "default-src 'none'" not in docs.headers["content-security-policy"]  # not the API's
    assert (await client.get("/redoc")).status_code == 200

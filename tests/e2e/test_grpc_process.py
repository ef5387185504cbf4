"""gRPC of a real ``archway serve monolith`` process: buf curl builds its calls from server
reflection (no .proto files at hand), as docs/protocols.md shows; the generated stubs call the
same process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from archway.proto.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.e2e
BUF = str(Path(sys.executable).with_name("buf"))


def buf_curl(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BUF, "curl", "--protocol", "grpc", "--http2-prior-knowledge", *args],
        capture_output=True, text=True, timeout=60, check=False)


def test_reflection_lists_every_service(server: RunningServer) -> None:
    done = buf_curl(server, "--list-services", f"http://{server.grpc_target}")
    assert done.returncode == 0, done.stderr
    assert {"archway.catalog.v1.CatalogService", "archway.identity.v1.UserService",
            "archway.orders.v1.OrderService", "grpc.health.v1.Health"} <= set(
        done.stdout.split())


def test_buf_curl_reads_the_seeded_catalog_and_the_callers_user(server: RunningServer) -> None:
    target = f"http://{server.grpc_target}"
    done = buf_curl(server, "-d", '{"page_size": 2, "sort": "PRODUCT_SORT_PRICE"}',
                    f"{target}/archway.catalog.v1.CatalogService/ListProducts")
    assert done.returncode == 0, done.stderr
    page = json.loads(done.stdout)
    prices = [int(product["price"]["amount"]) for product in page["products"]]
    assert len(prices) == 2 and prices == sorted(prices) and page["nextPageToken"]
    token = server.cli("token", "--user", "alice@archway.test", "--scope", "profile").strip()
    done = buf_curl(server, "-H", f"authorization: Bearer {token}",
                    f"{target}/archway.identity.v1.UserService/GetMe")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["user"]["email"] == "alice@archway.test"
    done = buf_curl(server, f"{target}/archway.identity.v1.UserService/GetMe")
    assert done.returncode != 0
    assert '"code": "unauthenticated"' in done.stdout + done.stderr


def test_generated_stubs_and_health_against_the_process(server: RunningServer) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="archway.orders.v1.OrderService"), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        catalog = catalog_pb2_grpc.CatalogServiceStub(channel)
        listed = catalog.ListProducts(catalog_pb2.ListProductsRequest(page_size=1), timeout=10)
        product = catalog.GetProduct(
            catalog_pb2.GetProductRequest(id=listed.products[0].id), timeout=10).product
        assert product == listed.products[0]
        with pytest.raises(grpc.RpcError) as refused:
            catalog.CreateProduct(catalog_pb2.CreateProductRequest(sku="X"), timeout=10)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED

"""The server around the services: health, reflection, the error mapping's forms."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from archway.kernel.errors import (
    AlreadyExists,
    Conflict,
    FieldError,
    InvalidInput,
    InvalidState,
    RateLimited,
    ServiceBusy,
    Unavailable,
)
from archway.kernel.grpc.status import code_of, field_path, status_of

SERVICES = {"archway.catalog.v1.CatalogService", "archway.identity.v1.UserService",
            "archway.orders.v1.OrderService"}


async def test_health_is_serving_for_the_server_and_each_service(
    channel: grpc.aio.Channel,
) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", *SERVICES):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    try:
        await health.Check(health_pb2.HealthCheckRequest(service="archway.nope.v1.Nope"))
    except grpc.aio.AioRpcError as error:
        assert error.code() is grpc.StatusCode.NOT_FOUND
    else:
        raise AssertionError("an unknown service is not healthy")


async def test_reflection_lists_every_service_and_serves_its_file(
    channel: grpc.aio.Channel,
) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="archway.orders.v1.OrderService")]
    answers = [answer async for answer in stub.ServerReflectionInfo(iter(requests))]
    listed = {service.name for service in answers[0].list_services_response.service}
    assert SERVICES | {"grpc.health.v1.Health"} <= listed
    files = answers[1].file_descriptor_response.file_descriptor_proto
    assert files and b"archway/orders/v1/orders.proto" in files[0]


def test_field_paths_take_protobufs_form() -> None:
    assert field_path(FieldError(("lines", 0, "product_id"), "x")) == "lines[0].product_id"
    assert field_path(FieldError(("price", "currency"), "x")) == "price.currency"
    assert field_path(FieldError(("cursor",), "x", parameter=True)) == "page_token"
    assert field_path(FieldError(("limit",), "x", parameter=True)) == "page_size"


def test_each_kind_of_conflict_has_its_own_code() -> None:
    assert code_of(AlreadyExists("x")) is grpc.StatusCode.ALREADY_EXISTS
    assert code_of(InvalidState("x")) is grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(Unavailable("x", [])) is grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(Conflict("x")) is grpc.StatusCode.ABORTED
    assert code_of(RateLimited()) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert code_of(ServiceBusy()) is grpc.StatusCode.UNAVAILABLE


def test_a_status_carries_its_detail_and_trailer() -> None:
    status = status_of(InvalidInput.field(("on_hand",), "must be 0 or more"))
    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "must be 0 or more"
    assert [key for key, _ in status.trailing_metadata] == ["grpc-status-details-bin"]

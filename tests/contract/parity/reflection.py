"""A gRPC client that has no generated code: it asks the server's reflection service for the
descriptors (grpcio-reflection's ``ProtoReflectionDescriptorDatabase``), builds the request and
response types at run time (``descriptor_pool`` + ``message_factory``) and calls each method by
its path, as a generic tool (grpcurl, buf curl) does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.json_format import ParseDict
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.contract.parity.grpc import TIMEOUT
from tests.contract.parity.neutral import Json

Method = tuple[str, type[Any], type[Any]]  # path, request type, response type


class ReflectedRpc:
    """Every method of ``services``, typed from the server's reflection alone."""

    def __init__(self, channel: grpc.aio.Channel, methods: dict[tuple[str, str], Method]) -> None:
        self._channel = channel
        self._methods = methods

    @classmethod
    async def discover(cls, target: str, channel: grpc.aio.Channel,
                       services: list[str]) -> ReflectedRpc:
        def describe() -> dict[tuple[str, str], Method]:
            # The database speaks the reflection protocol over a blocking channel: in a thread.
            with grpc.insecure_channel(target) as blocking:
                pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(blocking))
                methods = {}
                for name in services:
                    service = pool.FindServiceByName(name)
                    for method in service.methods:
                        methods[(name, method.name)] = (
                            f"/{name}/{method.name}",
                            message_factory.GetMessageClass(method.input_type),
                            message_factory.GetMessageClass(method.output_type))
                return methods

        return cls(channel, await asyncio.wait_for(asyncio.to_thread(describe), TIMEOUT))

    def message_type(self, service: str, method: str) -> type[Any]:
        return self._methods[(service, method)][1]

    async def unary(self, service: str, method: str, request: Json,
                    metadata: tuple[tuple[str, str], ...]) -> Any:
        path, request_type, response_type = self._methods[(service, method)]
        call = self._channel.unary_unary(
            path, request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString)
        return await call(ParseDict(request, request_type()), metadata=metadata, timeout=TIMEOUT)

    def stream(self, service: str, method: str, request: Json,
               metadata: tuple[tuple[str, str], ...]) -> AsyncIterator[Any]:
        path, request_type, response_type = self._methods[(service, method)]
        call = self._channel.unary_stream(
            path, request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString)
        return aiter(call(ParseDict(request, request_type()), metadata=metadata, timeout=TIMEOUT))

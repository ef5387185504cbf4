"""Identity over gRPC (``archway.identity.v1.UserService``): thin, like ``rest.py``: read the
request, call the service with the caller's principal, shape the answer. The guard
(``kernel.grpc.server``) authenticates and maps every refusal."""

from __future__ import annotations

from typing import Any

from archway.identity.domain import User
from archway.identity.service import IdentityService
from archway.kernel.grpc.messages import next_page_token, page_request, timestamp
from archway.kernel.grpc.server import Registration, Served, caller
from archway.kernel.ratelimit.policy import RouteClass
from archway.proto.identity.v1 import identity_pb2, identity_pb2_grpc

SERVICE_NAME = identity_pb2.DESCRIPTOR.services_by_name["UserService"].full_name
READS = RouteClass.READS
ROUTE_CLASSES = {"GetUser": READS, "GetMe": READS, "ListUsers": READS}
"""What the rate limits count each method as (REST's reads and writes; the server refuses to
start when a method of the service is missing here)."""


def user_message(user: User) -> identity_pb2.User:
    return identity_pb2.User(
        id=user.id, email=user.email, name=user.name, roles=sorted(user.roles),
        created_at=timestamp(user.created_at), updated_at=timestamp(user.updated_at))


class UserServicer(identity_pb2_grpc.UserServiceServicer):  # type: ignore[misc]  # generated
    def __init__(self, service: IdentityService[Any]) -> None:
        self._service = service

    async def GetUser(
        self, request: identity_pb2.GetUserRequest, context: object
    ) -> identity_pb2.GetUserResponse:
        user = await self._service.get_user(caller(), request.id)
        return identity_pb2.GetUserResponse(user=user_message(user))

    async def GetMe(
        self, request: identity_pb2.GetMeRequest, context: object
    ) -> identity_pb2.GetMeResponse:
        return identity_pb2.GetMeResponse(user=user_message(await self._service.me(caller())))

    async def ListUsers(
        self, request: identity_pb2.ListUsersRequest, context: object
    ) -> identity_pb2.ListUsersResponse:
        principal = caller()
        page = page_request(request.page_size, request.page_token, cursor_arity=1)
        result = await self._service.list_users(principal, page)
        return identity_pb2.ListUsersResponse(
            users=[user_message(user) for user in result.items],
            next_page_token=next_page_token(result))


def register(service: IdentityService[Any]) -> Registration:
    """A :data:`~archway.kernel.grpc.server.Registration` of the user service."""

    def add(server: Any) -> Served:
        identity_pb2_grpc.add_UserServiceServicer_to_server(UserServicer(service), server)
        return Served(SERVICE_NAME, ROUTE_CLASSES)

    return add

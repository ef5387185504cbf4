"""UserService over a real gRPC server: the identity service's rules, gRPC's codes."""

from __future__ import annotations

import grpc

from archway.proto.identity.v1 import identity_pb2 as pb
from archway.proto.identity.v1.identity_pb2_grpc import UserServiceStub
from archway.topologies.monolith import Monolith
from tests.conftest import ADMIN, ALICE, BOB
from tests.grpc_api.conftest import Bearer, field_violations, refusal


async def test_get_me_answers_the_callers_own_user(
    users: UserServiceStub, bearer: Bearer, accounts: dict[str, str]
) -> None:
    me = (await users.GetMe(pb.GetMeRequest(), metadata=await bearer(ALICE[0], "profile"))).user
    assert (me.id, me.email, list(me.roles)) == (accounts[ALICE[0]], ALICE[0], ["customer"])
    error = await refusal(users.GetMe(pb.GetMeRequest()))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    error = await refusal(users.GetMe(pb.GetMeRequest(), metadata=await bearer(ALICE[0], "")))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_get_user_is_for_the_user_itself_or_an_admin_with_users_read(
    users: UserServiceStub, bearer: Bearer, accounts: dict[str, str]
) -> None:
    alice, bob = accounts[ALICE[0]], accounts[BOB[0]]
    own = await users.GetUser(
        pb.GetUserRequest(id=alice), metadata=await bearer(ALICE[0], "profile"))
    assert own.user.id == alice
    error = await refusal(users.GetUser(
        pb.GetUserRequest(id=bob), metadata=await bearer(ALICE[0], "profile users:read")))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    admin = await bearer(ADMIN[0], "users:read")
    assert (await users.GetUser(pb.GetUserRequest(id=bob), metadata=admin)).user.email == BOB[0]
    error = await refusal(users.GetUser(
        pb.GetUserRequest(id="0190a6a0-0000-7000-8000-000000000000"), metadata=admin))
    assert error.code() is grpc.StatusCode.NOT_FOUND


async def test_list_users_pages_for_admins_only(users: UserServiceStub, bearer: Bearer) -> None:
    admin = await bearer(ADMIN[0], "users:read")
    first = await users.ListUsers(pb.ListUsersRequest(page_size=2), metadata=admin)
    assert len(first.users) == 2 and first.next_page_token
    rest = await users.ListUsers(
        pb.ListUsersRequest(page_size=2, page_token=first.next_page_token), metadata=admin)
    assert len(rest.users) == 1 and rest.next_page_token == ""
    assert {u.email for u in [*first.users, *rest.users]} == {ADMIN[0], ALICE[0], BOB[0]}
    error = await refusal(users.ListUsers(
        pb.ListUsersRequest(), metadata=await bearer(ALICE[0], "users:read")))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    error = await refusal(users.ListUsers(
        pb.ListUsersRequest(page_token="W10"), metadata=admin))  # "[]": not this API's cursor
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(error)) == ["page_token"]


async def test_a_token_whose_user_is_gone_is_unauthenticated(
    users: UserServiceStub, bearer: Bearer, graph: Monolith, accounts: dict[str, str]
) -> None:
    metadata = await bearer(BOB[0], "profile users:write")
    admin = await bearer(ADMIN[0], "users:read")
    await users.GetMe(pb.GetMeRequest(), metadata=metadata)
    token = metadata[0][1].removeprefix("Bearer ")
    await graph.identity.delete_user(await graph.verifier.verify(token), accounts[BOB[0]])
    error = await refusal(users.GetMe(pb.GetMeRequest(), metadata=metadata))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "no longer exists" in error.details()
    assert len((await users.ListUsers(pb.ListUsersRequest(), metadata=admin)).users) == 2

"""Identity over GraphQL: the user's own fields, and what the schema's fields about users call
(the same service methods as ``identity.rest``: the service decides who may read whom). The
composition (``archway.graphql``) adds the fields that join other contexts, ``User.orders``."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.types import Info

from archway.identity.domain import User as UserValue
from archway.identity.service import IdentityService
from archway.kernel.graphql.context import GraphQLContext
from archway.kernel.graphql.errors import argument
from archway.kernel.graphql.types import page_request
from archway.kernel.pagination import Page

AUTH_MUTATIONS = frozenset({"register"})
"""Mutations the rate limits count in the strict ``auth`` class, as REST counts registering
(``POST /users``): GraphQL must not be the cheap way to make accounts."""


@strawberry.type
class UserFields:
    """A user as identity knows it."""

    id: strawberry.ID
    email: str
    name: str
    roles: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def fields_of(cls, user: UserValue) -> dict[str, Any]:
        return {"id": strawberry.ID(user.id), "email": user.email, "name": user.name,
                "roles": sorted(user.roles), "created_at": user.created_at,
                "updated_at": user.updated_at}


@strawberry.input
class Registration:
    email: str
    password: str
    name: str


def identity(info: Info[GraphQLContext, Any]) -> IdentityService[Any]:
    return cast("IdentityService[Any]", info.context.services["identity"])


async def me(info: Info[GraphQLContext, Any]) -> UserValue:
    return await identity(info).me(info.context.caller)


async def user(info: Info[GraphQLContext, Any], user_id: str) -> UserValue:
    return await identity(info).get_user(info.context.caller, user_id)


async def users(
    info: Info[GraphQLContext, Any], first: int | None, after: str | None
) -> Page[UserValue]:
    caller = info.context.caller
    return await identity(info).list_users(caller, page_request(first, after, cursor_arity=1))


async def register(info: Info[GraphQLContext, Any], registration: Registration) -> UserValue:
    """Anyone may register; the new user is a customer."""
    with argument("input"):
        return await identity(info).register(
            registration.email, registration.password, registration.name)


def user_cursor(value: UserValue) -> tuple[str]:
    return (value.id,)

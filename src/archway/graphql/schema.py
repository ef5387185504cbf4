"""The one schema: each context's types and fields, and the fields that join contexts.

Each context's ``graphql`` module has its own types and the calls into its own services; only
here do contexts meet, as they meet in the composition root: ``OrderLine.product`` (orders →
catalog) and ``User.orders`` (identity → orders) are resolved through DataLoaders, so the
statements per request do not grow with the rows returned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import strawberry
from strawberry.types import Info

from archway.catalog import graphql as catalog_graphql
from archway.identity import graphql as identity_graphql
from archway.kernel.graphql.context import GraphQLContext
from archway.kernel.graphql.types import Connection, field, mutation, subscription
from archway.kernel.pagination import DEFAULT_LIMIT
from archway.orders import graphql as orders_graphql
from archway.orders.queries import OrderView

Context = Info[GraphQLContext, Any]


@strawberry.type
class OrderLine(orders_graphql.OrderLineFields):
    @field("The product now (null once it is deleted, or off sale "
                      "to a caller who is not a catalog admin).")
    async def product(self, info: Context) -> catalog_graphql.Product | None:
        return (await catalog_graphql.load_products(info, [str(self.product_id)]))[0]


@strawberry.type
class Order(orders_graphql.OrderFields):
    @strawberry.field
    def lines(self) -> list[OrderLine]:
        return [OrderLine(**OrderLine.fields_of(line)) for line in self.view.lines]

    @classmethod
    def of(cls, view: OrderView) -> Order:
        return cls(**cls.fields_of(view))


@strawberry.type
class User(identity_graphql.UserFields):
    @field("The user's orders, newest first (the user with "
                      "orders:read, or an admin).")
    async def orders(
        self, info: Context, first: int = DEFAULT_LIMIT, after: str | None = None
    ) -> Connection[Order]:
        page = await orders_graphql.orders_of(info, str(self.id), first, after)
        return Connection.of(page, Order.of, orders_graphql.order_cursor)

    @classmethod
    def of(cls, user: Any) -> User:
        return cls(**cls.fields_of(user))


@strawberry.type
class Query(catalog_graphql.CatalogQuery):
    @field("The caller's own user (profile).")
    async def me(self, info: Context) -> User:
        return User.of(await identity_graphql.me(info))

    @field("A user: the user itself (profile), or an admin (users:read).")
    async def user(self, info: Context, id: strawberry.ID) -> User:
        return User.of(await identity_graphql.user(info, str(id)))

    @field("Every user, a page at a time (admins with users:read).")
    async def users(
        self, info: Context, first: int = DEFAULT_LIMIT, after: str | None = None
    ) -> Connection[User]:
        page = await identity_graphql.users(info, first, after)
        return Connection.of(page, User.of, identity_graphql.user_cursor)

    @field("An order: its customer or an admin (orders:read); someone "
                      "else's order is NOT_FOUND.")
    async def order(self, info: Context, id: strawberry.ID) -> Order:
        return Order.of(await orders_graphql.order(info, str(id)))

    @field("Orders, newest first: a customer's own, an admin's all "
                      "(orders:read).")
    async def orders(
        self, info: Context, first: int = DEFAULT_LIMIT, after: str | None = None
    ) -> Connection[Order]:
        page = await orders_graphql.orders(info, first, after)
        return Connection.of(page, Order.of, orders_graphql.order_cursor)

    @field("Best-selling products (reports:read).")
    async def top_products(
        self, info: Context, limit: int | None = None
    ) -> list[orders_graphql.ProductSales]:
        return await orders_graphql.top_products(info, limit)


@strawberry.type
class Mutation(catalog_graphql.CatalogMutation):
    @mutation("Anyone may register; the new user is a customer.")
    async def register(self, info: Context, input: identity_graphql.Registration) -> User:
        return User.of(await identity_graphql.register(info, input))

    @mutation("Customers with orders:write: a pending order. One order "
                         "per idempotencyKey and customer, shared with REST's Idempotency-Key.")
    async def place_order(
        self,
        info: Context,
        input: orders_graphql.PlaceOrderInput,
        idempotency_key: str | None = None,
    ) -> Order:
        return Order.of(await orders_graphql.place_order(info, input.lines, idempotency_key))

    @mutation("The order's customer or an admin (orders:write).")
    async def cancel_order(self, info: Context, id: strawberry.ID) -> Order:
        return Order.of(await orders_graphql.cancel_order(info, str(id)))


@strawberry.type
class Subscription:
    @subscription("The order now, then each new state of it, until it "
                  "is rejected or cancelled (its customer or an admin, orders:read).")
    async def order_updated(self, info: Context, id: strawberry.ID) -> AsyncIterator[Order]:
        async for view in orders_graphql.order_updates(info, str(id)):
            yield Order.of(view)

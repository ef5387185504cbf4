"""DataLoaders: the SQL statements of a GraphQL request do not grow with the rows it returns.

Each query runs twice (with the app started: its relays build the read side) against
services over a database that counts the statements it is handed (``CountingDb``), once for a
few rows and once for many; both counts must be equal, and small.
"""

from __future__ import annotations

from typing import Any

from archway.catalog.service import CatalogService
from archway.catalog.store import CatalogRepository
from archway.graphql.endpoint import build_schema
from archway.identity.keys import TokenIssuer
from archway.identity.service import IdentityService
from archway.identity.store import (
    AuthorizationCodeRepository,
    ClientRepository,
    RefreshTokenRepository,
    UserRepository,
)
from archway.kernel.auth.principal import Principal
from archway.kernel.db import Database
from archway.kernel.graphql.context import GraphQLContext
from archway.kernel.pagination import PageRequest
from archway.orders.domain import LineRequest
from archway.orders.queries import OrderQueries
from archway.topologies.monolith import Monolith
from tests.integration.orders.test_batched_consumers import CountingDb
from tests.ordering import eventually, stocked_product

ADMIN = Principal("admin", scopes=frozenset({"users:read", "orders:read", "catalog:write"}),
                  roles=frozenset({"admin"}))
CUSTOMERS = 12


def counted_services(graph: Monolith, counting: CountingDb) -> dict[str, object]:
    db: Any = counting  # the services take any units of work; this one counts
    issuer = TokenIssuer(
        graph.keys, issuer="http://testserver", audience="archway", default_ttl=60)
    return {
        "catalog": CatalogService(db, products=CatalogRepository, cache_ttl_seconds=0),
        "identity": IdentityService(
            db, graph.hasher, graph.keys, issuer, users=UserRepository, clients=ClientRepository,
            refresh_tokens=RefreshTokenRepository, codes=AuthorizationCodeRepository),
        "order_queries": OrderQueries(db),
    }


async def statements_of(graph: Monolith, database: Database, query: str) -> int:
    counting = CountingDb(database)
    context = GraphQLContext(counted_services(graph, counting), ADMIN)
    result = await build_schema().execute(query, context_value=context)
    assert result.errors is None, result.errors
    return counting.statements


async def shop(graph: Monolith) -> list[str]:
    """100 products and 12 customers, each with two orders of three lines."""
    products = [await stocked_product(graph, f"P-{n:03}", on_hand=100) for n in range(100)]
    for n in range(CUSTOMERS):
        user = await graph.identity.register(f"c{n}@archway.test", "a long password", f"C {n}")
        customer = Principal(user.id, scopes=frozenset({"orders:write"}))
        for k in range(2):
            lines = [LineRequest(products[(n * 6 + k * 3 + i) % 100], 1) for i in range(3)]
            await graph.orders.place(customer, lines)
    await graph.relays.settle()
    await eventually(  # the read side has every order
        lambda: graph.order_queries.list_orders(ADMIN, PageRequest(limit=100)),
        lambda page: len(page.items) == 2 * CUSTOMERS)
    return products


async def test_products_run_as_many_statements_for_100_rows_as_for_10(
    graph: Monolith, database: Database, app: object
) -> None:
    await shop(graph)
    page = ("{ products(first: %d) { edges { node { id sku price { amount currency } "
            "available } } pageInfo { hasNextPage endCursor } } }")
    few = await statements_of(graph, database, page % 10)
    many = await statements_of(graph, database, page % 100)
    assert few == many == 1


async def test_orders_with_their_lines_products_run_a_fixed_number_of_statements(
    graph: Monolith, database: Database, app: object
) -> None:
    await shop(graph)
    query = ("{ orders(first: %d) { edges { node { id total { amount } lines { quantity "
             "product { sku price { amount } } } } } } }")
    few = await statements_of(graph, database, query % 1)
    many = await statements_of(graph, database, query % 24)  # every order, 48 distinct products
    assert few == many == 2  # the page, then every product of its lines at once


async def test_users_with_their_orders_run_a_fixed_number_of_statements(
    graph: Monolith, database: Database, app: object
) -> None:
    await shop(graph)
    query = ("{ users(first: %d) { edges { node { email orders(first: 5) { edges { node { id "
             "lines { product { sku } } } } } } } } }")
    few = await statements_of(graph, database, query % 1)
    many = await statements_of(graph, database, query % CUSTOMERS)
    assert few == many == 3  # the users, every user's orders at once, every product at once

"""Abusive queries are refused before they run, with a GraphQL error (a 200, never a 5xx):
depth, aliases, tokens and cost each have a limit; parsing and validation are cached."""

from __future__ import annotations

import httpx
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache

from archway.graphql.endpoint import Limits, build_schema
from tests.conftest import ADMIN, AuthHeaders
from tests.graphql.conftest import Gql, codes

LIMITS = Limits()


async def test_a_query_deeper_than_the_limit_is_refused(
    gql: Gql, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    admin = await auth_headers(ADMIN[0], "profile users:read orders:read")
    # The deepest path the types offer, users … product { price { amount } }, is depth 9 as
    # Strawberry counts (the root field is 0): the default (10) lets it through.
    # (Introspection is not counted by Strawberry's limiter; the token limit bounds it.)
    deepest = """fragment F on OrderLine { product { price { amount } } }
        { users { edges { node { orders { edges { node { lines { ...F } } } } } } } }"""
    assert "errors" not in await gql(deepest, headers=admin)
    # A lower limit refuses it before anything runs (no context: no resolver may run).
    result = await build_schema(Limits(max_depth=8)).execute(deepest)
    assert result.errors is not None and result.data is None
    (error,) = result.errors
    assert error.extensions == {"code": "QUERY_TOO_COMPLEX"}
    assert "maximum operation depth of 8" in error.message


async def test_too_many_aliases_are_refused(gql: Gql) -> None:
    fits = "{ " + " ".join(f"a{n}: __typename" for n in range(LIMITS.max_aliases)) + " }"
    assert "errors" not in await gql(fits)
    flood = "{ " + " ".join(
        f"a{n}: products {{ edges {{ cursor }} }}" for n in range(LIMITS.max_aliases + 1)) + " }"
    assert codes(await gql(flood)) == ["QUERY_TOO_COMPLEX"]


async def test_too_many_tokens_are_refused_before_parsing_ends(gql: Gql) -> None:
    flood = "{ " + "__typename " * LIMITS.max_tokens + "}"
    answer = await gql(flood)
    assert codes(answer) == ["QUERY_TOO_COMPLEX"]
    assert "more than 2000 tokens" in answer["errors"][0]["message"]


async def test_a_query_costing_more_than_the_limit_is_refused_with_its_cost(
    gql: Gql, auth_headers: AuthHeaders, accounts: dict[str, str]
) -> None:
    admin = await auth_headers(ADMIN[0], "users:read orders:read")
    page = "products(first: 100) { edges { node { id sku name price { amount currency } } } }"
    assert "errors" not in await gql("{ " + page + " }")  # the largest page is fine
    nested = """query($n: Int!) { users(first: 100) { edges { node { orders(first: $n) {
        edges { node { id lines { product { id sku } } } } } } } } }"""
    answer = await gql(nested, headers=admin, n=1)  # a variable counts as the largest page
    assert codes(answer) == ["QUERY_TOO_COMPLEX"]
    extensions = answer["errors"][0]["extensions"]
    assert extensions["cost"] > extensions["maxCost"] == LIMITS.max_cost
    literal = nested.replace("query($n: Int!) ", "").replace("$n", "2")
    assert "errors" not in await gql(literal, headers=admin)  # 100 × 2 pages are affordable


async def test_a_fragment_cycle_is_a_validation_error_not_a_hang(gql: Gql) -> None:
    cycle = """fragment A on Product { ...B } fragment B on Product { ...A }
        { products { edges { node { ...A } } } }"""
    assert codes(await gql(cycle)) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_parsing_and_validation_are_cached_across_requests(
    client: httpx.AsyncClient
) -> None:
    query = {"query": "{ products(first: 3) { edges { cursor } } }"}
    parsed = _get_parse_cache(LIMITS.cached_documents)  # Strawberry's shared caches, by size
    validated = _get_validate_cache(LIMITS.cached_documents)
    await client.post("/graphql", json=query)
    parse_hits, validation_hits = parsed.cache_info().hits, validated.cache_info().hits
    for _ in range(3):
        assert (await client.post("/graphql", json=query)).status_code == 200
    assert parsed.cache_info().hits == parse_hits + 3
    assert validated.cache_info().hits == validation_hits + 3

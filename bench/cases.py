"""The benchmark cases: each request shape wrk sends, and what its variables name."""

from __future__ import annotations

import base64
from urllib.parse import quote, urlencode

from wrk import Case, body_request_script, graphql_mutation_script, keyed_request_script

AUTH = {"Authorization": "Bearer {token}"}
PRODUCT_VARIABLES = ("product_id", "product_id_2", "product_id_3")


def order_body(lines: int) -> str:
    """An order of ``lines`` lines over the first products of the seed."""
    items = ", ".join(
        f'{{"product_id": "{{{name}}}", "quantity": 1}}' for name in PRODUCT_VARIABLES[:lines])
    return f'{{"lines": [{items}]}}'

def graphql_get(query: str) -> str:
    """A GraphQL query as a GET (so wrk needs no script), ``{product_id}`` kept for the case."""
    return "/graphql?query=" + quote(query, safe="").replace("%7Bproduct_id%7D", "{product_id}")


GRAPHQL_PRODUCT = '{ product(id: "{product_id}") { id name price { amount currency } } }'
GRAPHQL_PLACE = (  # {key}: a new idempotency key per request (graphql_mutation_script)
    '{"query": "mutation($key: String) { placeOrder(input: {lines: [{productId: '
    '\\"{product_id}\\", quantity: 1}]}, idempotencyKey: $key) { id status } }", '
    '"variables": {"key": "{key}"}}')

DEMO_CLIENT = ("archway-demo", "archway-demo-client-secret-for-local-use-only")
"""The confidential client ``archway seed`` makes (``topologies/demo.py``)."""

BASIC = "Basic " + base64.b64encode(":".join(DEMO_CLIENT).encode()).decode()
TOKEN_FORM = urlencode({"grant_type": "client_credentials", "scope": "reports:read"})

CASES = [
    Case("hello", "hello", "GET", "/hello"),
    Case("product_by_id", "app", "GET", "/api/v1/products/{product_id}"),
    Case("product_list", "app", "GET", "/api/v1/products?limit=20"),
    Case("users_me", "app", "GET", "/api/v1/users/me", AUTH),
    Case("order_place", "app", "POST", "/api/v1/orders",
         {**AUTH, "Content-Type": "application/json"},
         keyed_request_script("POST", *(order_body(n) for n in (1, 2, 3))), catch_up=True),
    # client_credentials with client_secret_basic: one new ES256 token per request.
    Case("oauth_token", "app", "POST", "/oauth/token",
         {"Authorization": BASIC, "Content-Type": "application/x-www-form-urlencoded"},
         body_request_script("POST", TOKEN_FORM)),
    Case("orders_list", "app", "GET", "/api/v1/orders?limit=20", AUTH),
    # GraphQL's product query, and bare Strawberry (with its caches) answering the same shape
    # from memory: the peers' baseline (bench/README.md).
    Case("graphql_product", "app", "GET", graphql_get(GRAPHQL_PRODUCT)),
    Case("graphql_bare", "hello", "GET", graphql_get(  # its server knows no seed: any id
        GRAPHQL_PRODUCT.replace("{product_id}", "01a2441e-0000-7000-8000-000000000000"))),
    # One line per order, over REST and GraphQL (gRPC's PlaceOrder: bench/grpc_run.py).
    Case("order_place_1", "app", "POST", "/api/v1/orders",
         {**AUTH, "Content-Type": "application/json"},
         keyed_request_script("POST", order_body(1)), catch_up=True),
    Case("graphql_place", "app", "POST", "/graphql", {**AUTH, "Content-Type": "application/json"},
         graphql_mutation_script(GRAPHQL_PLACE), catch_up=True),
]

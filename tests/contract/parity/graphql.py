"""GraphQL through the ``gql`` client: queries and mutations over HTTP (its httpx transport),
``orderUpdated`` over graphql-transport-ws (its websockets transport); each answer in the
neutral shapes.

GraphQL's contract has no preconditions (``updateProduct`` and ``setStock`` take no version)
and no read-your-writes token: a read of an order just placed may come before the read model
has it (scenarios read with :func:`~tests.contract.parity.neutral.eventually`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from typing import Any

from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from tests.contract.parity.neutral import (
    LINE_KEYS,
    ORDER_KEYS,
    PRODUCT_KEYS,
    STOCK_KEYS,
    USER_KEYS,
    Json,
    NotInContract,
    Page,
    Refusal,
    Refused,
    checked,
    moment,
    neutral_path,
    snake,
)

KIND_BY_CODE = {
    "UNAUTHENTICATED": "unauthenticated", "FORBIDDEN": "forbidden", "NOT_FOUND": "not_found",
    "BAD_USER_INPUT": "invalid", "CONFLICT": "conflict",
    "PRECONDITION_FAILED": "precondition_failed", "RATE_LIMITED": "rate_limited",
}
MONEY = "{ amount currency }"
PRODUCT = f"id sku name description category price {MONEY} active available createdAt updatedAt"
USER = "id email name roles createdAt updatedAt"
ORDER = (f"id customerId status total {MONEY} rejectionReason placedAt updatedAt "
         f"lines {{ productId sku name quantity unitPrice {MONEY} lineTotal {MONEY} }}")
BODY_ARGUMENTS = frozenset({"input"})
"""The arguments that carry what REST sends as the body: a path into one starts at the body."""


def refusal(error: TransportQueryError) -> Refusal:
    assert error.errors and len(error.errors) == 1, error.errors
    (problem,) = error.errors
    extensions = problem.get("extensions") or {}
    assert extensions.get("code") in KIND_BY_CODE, problem
    fields = set()
    for named in extensions.get("fields", []):
        path = list(named["path"])
        if len(path) > 1 and path[0] in BODY_ARGUMENTS:
            path = path[1:]
        fields.add(neutral_path(path))
    return Refusal(frozenset({KIND_BY_CODE[extensions["code"]]}), frozenset(fields),
                   problem["message"], extensions.get("retryAfter"))


def neutral(value: Any) -> Any:
    """camelCase keys → snake_case, all the way down."""
    if isinstance(value, dict):
        return {snake(key): neutral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [neutral(item) for item in value]
    return value


def product(node: Json) -> Json:
    shape = neutral(node)
    shape.update(created_at=moment(shape["created_at"]), updated_at=moment(shape["updated_at"]))
    return checked(shape, PRODUCT_KEYS)


def user(node: Json) -> Json:
    shape = neutral(node)
    shape.update(created_at=moment(shape["created_at"]), updated_at=moment(shape["updated_at"]))
    return checked(shape, USER_KEYS)


def order(node: Json) -> Json:
    shape = neutral(node)
    shape.update(status=shape["status"].lower(), placed_at=moment(shape["placed_at"]),
                 updated_at=moment(shape["updated_at"]))
    for line in shape["lines"]:
        checked(line, LINE_KEYS)
    return checked(shape, ORDER_KEYS)


def page(connection: Json, shape: Any) -> Page:
    info = connection["pageInfo"]
    return Page([shape(edge["node"]) for edge in connection["edges"]],
                info["endCursor"] if info["hasNextPage"] else None)


class GraphQLApi:
    name = "graphql"

    def __init__(self, base_url: str, session: AsyncClientSession) -> None:
        self._ws_url = re.sub(r"^http", "ws", base_url) + "/graphql"
        self._session = session

    @classmethod
    def http_client(cls, base_url: str) -> Client:
        return Client(transport=HTTPXAsyncTransport(f"{base_url}/graphql", timeout=30),
                      execute_timeout=30)

    async def _run(self, document: str, token: str | None, **variables: Any) -> Json:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        try:
            data = await self._session.execute(
                GraphQLRequest(document, variable_values=variables),
                extra_args={"headers": headers})
        except TransportQueryError as error:
            raise Refused(refusal(error)) from error
        assert isinstance(data, dict), data
        return data

    async def get_product(self, product_id: str, token: str | None = None) -> Json:
        data = await self._run(f"query($id: ID!) {{ product(id: $id) {{ {PRODUCT} }} }}", token,
                               id=product_id)
        return product(data["product"])

    async def list_products(self, limit: int, cursor: str | None = None, *, q: str | None = None,
                            token: str | None = None) -> Page:
        data = await self._run(
            "query($first: Int!, $after: String, $q: String) { products(first: $first, "
            f"after: $after, q: $q) {{ edges {{ node {{ {PRODUCT} }} }} "
            "pageInfo { hasNextPage endCursor } } }", token, first=limit, after=cursor, q=q)
        return page(data["products"], product)

    async def create_product(self, token: str | None, draft: Json) -> Json:
        data = await self._run(
            f"mutation($input: NewProduct!) {{ createProduct(input: $input) {{ {PRODUCT} }} }}",
            token, input=draft)
        return product(data["createProduct"])

    async def update_product(self, token: str | None, product_id: str, changes: Json) -> Json:
        data = await self._run(
            "mutation($id: ID!, $input: ProductPatch!) { updateProduct(id: $id, input: $input) "
            f"{{ {PRODUCT} }} }}", token, id=product_id, input=changes)
        return product(data["updateProduct"])

    async def version_of(self, product_id: str, token: str | None) -> object:
        raise NotInContract("GraphQL's product has no version, its writes no precondition")

    async def set_stock(self, token: str | None, product_id: str, on_hand: int,
                        version: object = None) -> Json:
        if version is not None:
            raise NotInContract("setStock takes no version")
        data = await self._run(
            "mutation($id: ID!, $onHand: Int!) { setStock(id: $id, onHand: $onHand) "
            "{ productId onHand reserved available } }", token, id=product_id, onHand=on_hand)
        return checked(neutral(data["setStock"]), STOCK_KEYS)

    async def me(self, token: str | None) -> Json:
        return user((await self._run(f"{{ me {{ {USER} }} }}", token))["me"])

    async def get_user(self, token: str | None, user_id: str) -> Json:
        data = await self._run(f"query($id: ID!) {{ user(id: $id) {{ {USER} }} }}", token,
                               id=user_id)
        return user(data["user"])

    async def get_order(self, token: str | None, order_id: str) -> Json:
        data = await self._run(f"query($id: ID!) {{ order(id: $id) {{ {ORDER} }} }}", token,
                               id=order_id)
        return order(data["order"])

    async def list_orders(self, token: str | None, limit: int,
                          cursor: str | None = None) -> Page:
        data = await self._run(
            "query($first: Int!, $after: String) { orders(first: $first, after: $after) "
            f"{{ edges {{ node {{ {ORDER} }} }} pageInfo {{ hasNextPage endCursor }} }} }}",
            token, first=limit, after=cursor)
        return page(data["orders"], order)

    async def place_order(self, token: str | None, lines: list[tuple[str, int]]) -> Json:
        data = await self._run(
            f"mutation($input: PlaceOrderInput!) {{ placeOrder(input: $input) {{ {ORDER} }} }}",
            token, input={"lines": [{"productId": product_id, "quantity": quantity}
                                    for product_id, quantity in lines]})
        return order(data["placeOrder"])

    async def cancel_order(self, token: str | None, order_id: str) -> Json:
        data = await self._run(
            f"mutation($id: ID!) {{ cancelOrder(id: $id) {{ {ORDER} }} }}", token, id=order_id)
        return order(data["cancelOrder"])

    async def watch_order(self, token: str | None, order_id: str) -> AsyncGenerator[Json, None]:
        transport = WebsocketsTransport(
            url=self._ws_url, subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
            init_payload={"Authorization": f"Bearer {token}"} if token is not None else {},
            connect_timeout=10, ack_timeout=10, close_timeout=5)
        async with Client(transport=transport, execute_timeout=30) as session:
            subscription = session.subscribe(GraphQLRequest(
                f"subscription($id: ID!) {{ orderUpdated(id: $id) {{ {ORDER} }} }}",
                variable_values={"id": order_id}))
            try:
                async for data in subscription:
                    assert isinstance(data, dict), data
                    yield order(data["orderUpdated"])
            except TransportQueryError as error:
                raise Refused(refusal(error)) from error

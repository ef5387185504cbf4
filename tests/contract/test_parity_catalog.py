"""Parity, catalog: a product read, a list paged by cursor, and the admin's writes give the same
data over REST, GraphQL and gRPC (and over a gRPC client built from reflection alone)."""

from __future__ import annotations

import uuid

import pytest

from tests.contract.conftest import Tokens
from tests.contract.parity import PROTOCOLS, REFLECTION, over
from tests.contract.parity.neutral import Json, ShopApi
from tests.contract.parity.shop import draft, made_product

pytestmark = pytest.mark.e2e
NO_UPDATE = {"grpc": "CatalogService has no UpdateProduct (docs/protocols.md)"}


@pytest.fixture(scope="module")
async def product(apis: dict[str, ShopApi], tokens: Tokens) -> Json:
    return await made_product(apis["rest"], tokens.admin, "GET", stock=4, price=4200)


@pytest.fixture(scope="module")
async def listed(apis: dict[str, ShopApi], tokens: Tokens) -> tuple[str, list[Json]]:
    """A word no other product has, and five products named with it, oldest first."""
    word = f"zq{uuid.uuid4().hex[:8]}"
    made = [await made_product(apis["rest"], tokens.admin, "LIST", stock=n, price=100 + n,
                               name=f"Parity {word} {n}") for n in range(5)]
    return word, made


@over(*PROTOCOLS, REFLECTION)
async def test_a_product_reads_the_same(api: ShopApi, product: Json) -> None:
    assert await api.get_product(product["id"]) == product
    assert product["price"] == {"amount": 4200, "currency": "EUR"} and product["available"] == 4


@over(*PROTOCOLS, REFLECTION)
async def test_a_list_pages_alike_first_page_then_by_cursor(
    api: ShopApi, listed: tuple[str, list[Json]]
) -> None:
    word, made = listed
    pages, cursor = [], None
    for _ in range(len(made)):  # bounded: a cursor that never ends fails below
        page = await api.list_products(2, cursor, q=word)
        pages.append(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert cursor is None
    assert pages == [made[0:2], made[2:4], made[4:5]]


@over()
async def test_a_created_product_is_what_was_asked_for(
    api: ShopApi, rest: ShopApi, tokens: Tokens
) -> None:
    asked = draft(api.name.upper(), price=1250)
    made = await api.create_product(tokens.admin, asked)
    assert {name: made[name] for name in asked} == asked
    assert (made["active"], made["available"]) == (True, 0)
    assert uuid.UUID(made["id"]).version == 7
    assert made["created_at"] == made["updated_at"]
    assert await rest.get_product(made["id"]) == made  # the same product, whoever wrote it


@over(skip=NO_UPDATE)
async def test_an_update_changes_only_what_it_names(
    api: ShopApi, rest: ShopApi, tokens: Tokens
) -> None:
    before = await made_product(rest, tokens.admin, "UPD", stock=2)
    changes = {"name": f"Renamed {before['sku']}", "price": {"amount": 2500, "currency": "EUR"}}
    after = await api.update_product(tokens.admin, before["id"], changes)
    assert after == {**before, **changes, "updated_at": after["updated_at"]}
    assert after["updated_at"] > before["updated_at"]
    assert await rest.get_product(before["id"]) == after


@over()
async def test_a_stock_count_shows_in_the_product(
    api: ShopApi, rest: ShopApi, tokens: Tokens
) -> None:
    made = await made_product(rest, tokens.admin, "STOCK", stock=0)
    counted = await api.set_stock(tokens.admin, made["id"], 7)
    assert counted == {"product_id": made["id"], "on_hand": 7, "reserved": 0, "available": 7}
    assert (await api.get_product(made["id"]))["available"] == 7
    assert (await rest.get_product(made["id"]))["available"] == 7


async def test_the_reflection_client_builds_its_types_at_run_time(
    apis: dict[str, ShopApi],
) -> None:
    from archway.proto.catalog.v1 import catalog_pb2
    from tests.contract.parity.grpc import CATALOG, GrpcApi
    from tests.contract.parity.reflection import ReflectedRpc

    reflected = apis[REFLECTION]
    assert isinstance(reflected, GrpcApi) and isinstance(reflected.rpc, ReflectedRpc)
    built = reflected.rpc.message_type(CATALOG, "GetProduct")
    assert built.DESCRIPTOR.full_name == "archway.catalog.v1.GetProductRequest"
    assert built is not catalog_pb2.GetProductRequest
    assert built.DESCRIPTOR.file.pool is not catalog_pb2.DESCRIPTOR.pool

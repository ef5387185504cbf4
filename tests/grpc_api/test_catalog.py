"""CatalogService over a real gRPC server: the catalog service's rules, gRPC's codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import httpx
import pytest
from grpc_status import rpc_status

from archway.catalog.service import CatalogService
from archway.proto.catalog.v1 import catalog_pb2 as pb
from archway.proto.catalog.v1.catalog_pb2_grpc import CatalogServiceStub
from archway.proto.type.v1.money_pb2 import Money
from tests.conftest import ADMIN, ALICE
from tests.grpc_api.conftest import Bearer, field_violations, refusal

MakeProduct = Callable[..., Awaitable[str]]


async def test_get_product_answers_the_product_with_money_in_minor_units(
    catalog: CatalogServiceStub, make_product: MakeProduct
) -> None:
    product_id = await make_product("GRPC-1", price=2550, stock=7)
    answer = await catalog.GetProduct(pb.GetProductRequest(id=product_id))
    product = answer.product
    assert (product.id, product.sku, product.available, product.active) == (
        product_id, "GRPC-1", 7, True)
    assert (product.price.amount, product.price.currency) == (2550, "EUR")
    assert product.created_at.seconds > 0 and product.version == 2


async def test_an_unknown_or_malformed_product_is_not_found(catalog: CatalogServiceStub) -> None:
    for product_id in ("0190a6a0-0000-7000-8000-000000000000", "not-an-id", ""):
        error = await refusal(catalog.GetProduct(pb.GetProductRequest(id=product_id)))
        assert error.code() is grpc.StatusCode.NOT_FOUND
        assert error.details() == "No such product."


async def test_list_pages_carry_the_same_token_as_rest_v2s_cursor(
    catalog: CatalogServiceStub, client: httpx.AsyncClient, make_product: MakeProduct
) -> None:
    ids = [await make_product(f"PAGE-{n}", price=100 + n) for n in range(3)]
    first = await catalog.ListProducts(pb.ListProductsRequest(page_size=2))
    assert [p.id for p in first.products] == ids[:2]
    rest = (await client.get("/api/v2/products", params={"limit": 2})).json()
    assert first.next_page_token == rest["next_cursor"]
    last = await catalog.ListProducts(
        pb.ListProductsRequest(page_size=2, page_token=first.next_page_token))
    assert [p.id for p in last.products] == ids[2:] and last.next_page_token == ""
    cheapest = await catalog.ListProducts(pb.ListProductsRequest(
        sort=pb.PRODUCT_SORT_PRICE_DESC, max_price=101))
    assert [p.id for p in cheapest.products] == [ids[1], ids[0]]


async def test_a_forged_page_token_or_size_is_invalid_argument_on_that_field(
    catalog: CatalogServiceStub,
) -> None:
    for request, field in ((pb.ListProductsRequest(page_token="forged"), "page_token"),
                           (pb.ListProductsRequest(page_size=101), "page_size"),
                           (pb.ListProductsRequest(q="a\x00b"), "q"),
                           (pb.ListProductsRequest(min_price=-1), "min_price")):
        error = await refusal(catalog.ListProducts(request))
        assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert list(field_violations(error)) == [field]


async def test_batch_get_answers_in_the_order_asked_or_not_found_naming_the_one_missing(
    catalog: CatalogServiceStub, make_product: MakeProduct
) -> None:
    first, second = await make_product("B-1"), await make_product("B-2")
    answer = await catalog.BatchGetProducts(pb.BatchGetProductsRequest(ids=[second, first]))
    assert [p.id for p in answer.products] == [second, first]
    error = await refusal(catalog.BatchGetProducts(
        pb.BatchGetProductsRequest(ids=[first, "0190a6a0-0000-7000-8000-000000000000"])))
    assert error.code() is grpc.StatusCode.NOT_FOUND and "ids[1]" in error.details()
    error = await refusal(catalog.BatchGetProducts(pb.BatchGetProductsRequest(ids=[])))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert list(field_violations(error)) == ["ids"]


def _draft(**changes: object) -> pb.CreateProductRequest:
    fields: dict[str, object] = {
        "sku": "NEW-1", "name": "A new game", "category": "board-games",
        "price": Money(amount=1999, currency="EUR")}
    return pb.CreateProductRequest(**{**fields, **changes})  # type: ignore[arg-type]


async def test_create_product_needs_a_token_then_an_admin_with_catalog_write(
    catalog: CatalogServiceStub, bearer: Bearer
) -> None:
    error = await refusal(catalog.CreateProduct(_draft(sku="bad sku!")))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED  # decided before the request
    customer = await bearer(ALICE[0], "catalog:write")
    error = await refusal(catalog.CreateProduct(_draft(sku="bad sku!"), metadata=customer))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    admin_without_scope = await bearer(ADMIN[0], "profile")
    error = await refusal(catalog.CreateProduct(_draft(), metadata=admin_without_scope))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "catalog:write" in error.details()


async def test_an_invalid_token_is_unauthenticated_even_on_a_public_read(
    catalog: CatalogServiceStub,
) -> None:
    for metadata in ((("authorization", "Bearer not.a.jwt"),), (("authorization", "Basic x"),)):
        error = await refusal(catalog.ListProducts(pb.ListProductsRequest(), metadata=metadata))
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_create_product_reports_every_invalid_field_as_bad_request_violations(
    catalog: CatalogServiceStub, bearer: Bearer
) -> None:
    admin = await bearer(ADMIN[0], "catalog:write")
    error = await refusal(catalog.CreateProduct(
        _draft(sku="bad sku!", category="Not A Slug"), metadata=admin))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(error)) == {"sku", "category"}
    error = await refusal(catalog.CreateProduct(
        _draft(price=Money(amount=5, currency="XXX")), metadata=admin))
    assert list(field_violations(error)) == ["price.currency"]
    error = await refusal(catalog.CreateProduct(
        pb.CreateProductRequest(sku="NO-PRICE", name="n", category="c"), metadata=admin))
    assert list(field_violations(error)) == ["price"]


async def test_create_then_a_duplicate_sku_is_already_exists(
    catalog: CatalogServiceStub, bearer: Bearer
) -> None:
    admin = await bearer(ADMIN[0], "catalog:write")
    created = (await catalog.CreateProduct(_draft(active=False), metadata=admin)).product
    assert (created.sku, created.active, created.available) == ("NEW-1", False, 0)
    error = await refusal(catalog.CreateProduct(_draft(), metadata=admin))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    # Off sale: hidden from the public, shown to the admin.
    assert (await refusal(catalog.GetProduct(pb.GetProductRequest(id=created.id)))).code() is (
        grpc.StatusCode.NOT_FOUND)
    shown = await catalog.GetProduct(pb.GetProductRequest(id=created.id), metadata=admin)
    assert shown.product.id == created.id


async def test_set_stock_counts_and_honours_the_expected_version(
    catalog: CatalogServiceStub, bearer: Bearer, make_product: MakeProduct
) -> None:
    product_id = await make_product("STOCK-1", stock=0)
    admin = await bearer(ADMIN[0], "catalog:write")
    stock = (await catalog.SetStock(
        pb.SetStockRequest(product_id=product_id, on_hand=12, expected_version=1),
        metadata=admin)).stock
    assert (stock.on_hand, stock.reserved, stock.available, stock.version) == (12, 0, 12, 2)
    error = await refusal(catalog.SetStock(
        pb.SetStockRequest(product_id=product_id, on_hand=3, expected_version=1), metadata=admin))
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    error = await refusal(catalog.SetStock(
        pb.SetStockRequest(product_id=product_id, on_hand=-1), metadata=admin))
    assert list(field_violations(error)) == ["on_hand"]


async def test_no_other_failure_text_reaches_the_client(
    catalog: CatalogServiceStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("SELECT secret FROM somewhere")

    monkeypatch.setattr(CatalogService, "list_products", broken)
    error = await refusal(catalog.ListProducts(pb.ListProductsRequest()))
    assert error.code() is grpc.StatusCode.INTERNAL
    assert error.details() == "Internal error."
    assert "secret" not in str(error.debug_error_string())
    status = rpc_status.from_call(error)
    assert status is not None and not status.details

"""The OpenAPI documents link each created or listed resource to the routes of its id."""

from __future__ import annotations

from typing import Any

import pytest

from archway.kernel.http.versioning import ApiVersion
from archway.tools.openapi_snapshot import current_documents

DOCUMENTS = current_documents()


def links_of(version: ApiVersion, method: str, path: str, status: str) -> dict[str, Any]:
    operation = DOCUMENTS[version]["paths"][version.prefix + path][method]
    return operation["responses"][status].get("links", {})  # type: ignore[no-any-return]


def targets(version: ApiVersion, links: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(method, path, parameter expression) of each link."""
    by_id = {
        operation["operationId"]: (method.upper(), path.removeprefix(version.prefix))
        for path, item in DOCUMENTS[version]["paths"].items()
        for method, operation in item.items()
    }
    return {(*by_id[link["operationId"]], expression)
            for link in links.values() for expression in link.get("parameters", {}).values()}


@pytest.mark.parametrize("version", list(ApiVersion))
def test_a_created_user_opens_its_routes(version: ApiVersion) -> None:
    assert targets(version, links_of(version, "post", "/users", "201")) == {
        ("GET", "/users/{user_id}", "$response.body#/id"),
        ("PATCH", "/users/{user_id}", "$response.body#/id"),
        ("DELETE", "/users/{user_id}", "$response.body#/id"),
    }


@pytest.mark.parametrize("version", list(ApiVersion))
def test_a_placed_order_opens_its_routes_and_its_customers_report(version: ApiVersion) -> None:
    assert targets(version, links_of(version, "post", "/orders", "202")) == {
        ("GET", "/orders/{order_id}", "$response.body#/id"),
        ("POST", "/orders/{order_id}/cancel", "$response.body#/id"),
        ("GET", "/reports/customers/{customer_id}", "$response.body#/customer_id"),
    }


@pytest.mark.parametrize("version", list(ApiVersion))
def test_a_created_product_opens_its_routes_and_its_stock(version: ApiVersion) -> None:
    assert targets(version, links_of(version, "post", "/products", "201")) == {
        (method, path, "$response.body#/id") for method, path in (
            ("GET", "/products/{product_id}"), ("PATCH", "/products/{product_id}"),
            ("DELETE", "/products/{product_id}"), ("GET", "/products/{product_id}/stock"),
            ("PUT", "/products/{product_id}/stock"))
    }


def test_lists_open_their_first_entry_v1_items_v2_data() -> None:
    assert ("GET", "/orders/{order_id}", "$response.body#/items/0/id") in targets(
        ApiVersion.V1, links_of(ApiVersion.V1, "get", "/orders", "200"))
    assert ("GET", "/users/{user_id}", "$response.body#/data/0/id") in targets(
        ApiVersion.V2, links_of(ApiVersion.V2, "get", "/users", "200"))


def test_the_signed_in_user_opens_its_own_routes() -> None:
    assert ("PATCH", "/users/{user_id}", "$response.body#/id") in targets(
        ApiVersion.V2, links_of(ApiVersion.V2, "get", "/users/me", "200"))


@pytest.mark.parametrize("path", ["/products", "/orders", "/users"])
def test_a_v2_page_opens_the_next_one(path: str) -> None:
    link = links_of(ApiVersion.V2, "get", path, "200")["NextPage"]
    assert link["parameters"] == {"query.cursor": "$response.body#/next_cursor"}
    assert link["operationId"] == DOCUMENTS[ApiVersion.V2]["paths"]["/api/v2" + path]["get"][
        "operationId"]


def test_every_link_names_an_operation_of_its_own_document() -> None:
    for document in DOCUMENTS.values():
        ids = {operation["operationId"] for item in document["paths"].values()
               for operation in item.values()}
        for item in document["paths"].values():
            for operation in item.values():
                for response in operation["responses"].values():
                    for link in response.get("links", {}).values():
                        assert link["operationId"] in ids


@pytest.mark.parametrize(("version", "listed"), [(ApiVersion.V1, "items"), (ApiVersion.V2, "data")])
def test_a_product_opens_an_order_of_one_unit_of_it(version: ApiVersion, listed: str) -> None:
    order_id = DOCUMENTS[version]["paths"][version.prefix + "/orders"]["post"]["operationId"]
    for method, path, status, expression in (
        ("post", "/products", "201", "$response.body#/id"),
        ("get", "/products/{product_id}", "200", "$response.body#/id"),
        ("get", "/products", "200", f"$response.body#/{listed}/0/id"),
    ):
        link = links_of(version, method, path, status)["PostOrders"]
        assert link["operationId"] == order_id
        assert link["requestBody"] == {"lines": [{"product_id": expression, "quantity": 1}]}

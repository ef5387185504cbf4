"""Sales reports over REST: thin routes over :class:`ReportQueries` (read models only).

Like every order query they honour a ``Consistency-Token``. (No ``from __future__ import
annotations``: FastAPI reads the parameters from the signatures.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.routing import APIRoute
from starlette.responses import Response

from archway.kernel.http.guard import Owner, requires
from archway.kernel.http.responses import JsonResponse, money
from archway.kernel.http.versioning import ApiVersion
from archway.orders.consistency import ReadYourWrites
from archway.orders.report_queries import (
    TOP_PRODUCTS_DEFAULT,
    TOP_PRODUCTS_MAX,
    CustomerSummary,
    ProductSales,
    ReportQueries,
)
from archway.orders.rest import Caller, consistency_dependency, doc_of
from archway.orders.rest_models import (
    CustomerSummaryV1,
    CustomerSummaryV2,
    TopProductsV1,
    TopProductsV2,
)

_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The `Consistency-Token` header is not one this API issued."},
}


def product_row(version: ApiVersion, row: ProductSales) -> dict[str, Any]:
    return {
        "product_id": row.product_id, "units_sold": row.units_sold,
        **money(version, "revenue", row.revenue.amount, row.revenue.currency),
    }


def summary_body(version: ApiVersion, summary: CustomerSummary) -> dict[str, Any]:
    spent = summary.total_spent
    return {
        "customer_id": summary.customer_id, "orders_count": summary.orders_count,
        **money(version, "total_spent", spent.amount, spent.currency),
    }


def build_router(
    version: ApiVersion,
    reports: ReportQueries,
    route_class: type[APIRoute],
    freshness: ReadYourWrites,
) -> APIRouter:
    """The report routes of one API version; it carries its version prefix."""
    router = APIRouter(prefix=version.prefix, route_class=route_class, tags=["reports"])
    v1 = version is ApiVersion.V1
    Fresh = Annotated[dict[str, str], Depends(consistency_dependency(freshness))]

    @router.get(
        "/reports/top-products", response_model=TopProductsV1 if v1 else TopProductsV2,
        summary="Best-selling products", description=doc_of(ReportQueries.top_products),
        responses=_REFUSALS, **requires("reports:read"),
    )
    async def top_products(
        caller: Caller, fresh: Fresh,
        limit: Annotated[int, Query(ge=1, le=TOP_PRODUCTS_MAX, description="Rows.")]
        = TOP_PRODUCTS_DEFAULT,
    ) -> Response:
        rows = await reports.top_products(caller, limit)
        key = "items" if v1 else "data"  # each version's name for a list
        return JsonResponse({key: [product_row(version, row) for row in rows]}, headers=fresh)

    @router.get(
        "/reports/customers/{customer_id}",
        response_model=CustomerSummaryV1 if v1 else CustomerSummaryV2,
        summary="A customer's orders and spending",
        description=doc_of(ReportQueries.customer_summary),
        responses={**_REFUSALS, 404: {"description": "Not a customer id."}},
        **requires("orders:read", owner=Owner("customer_id", "orders:read", "orders:read")),
    )
    async def customer_summary(customer_id: str, caller: Caller, fresh: Fresh) -> Response:
        summary = await reports.customer_summary(caller, customer_id)
        return JsonResponse(summary_body(version, summary), headers=fresh)

    return router

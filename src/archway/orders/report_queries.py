"""Sales reports, read from the report projections only (never the write model or the log)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from archway.kernel.auth.principal import Principal
from archway.kernel.db import UnitsOfWork
from archway.kernel.errors import Forbidden, NotFound
from archway.kernel.ids import is_valid_id
from archway.kernel.money import Money
from archway.orders.store import customer_summary, product_sales

REPORTS_SCOPE = "reports:read"
ORDERS_READ_SCOPE = "orders:read"
TOP_PRODUCTS_DEFAULT, TOP_PRODUCTS_MAX = 10, 100


@dataclass(frozen=True, slots=True)
class ProductSales:
    product_id: str
    units_sold: int
    revenue: Money


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    customer_id: str
    orders_count: int
    total_spent: Money


class ReportQueries:
    def __init__(self, db: UnitsOfWork, *, currency: str = "EUR") -> None:
        self._db = db
        self._currency = currency  # what a customer with no orders has spent nothing in

    async def top_products(self, principal: Principal, limit: int) -> list[ProductSales]:
        """Needs `reports:read`: the best-selling products, most units first (then revenue),
        counting confirmed orders and taking cancelled ones back out; at most `limit` rows."""
        principal.require_scope(REPORTS_SCOPE)
        query = select(product_sales).where(product_sales.c.units_sold > 0).order_by(
            product_sales.c.units_sold.desc(), product_sales.c.revenue.desc(),
            product_sales.c.product_id).limit(limit)
        rows = await self._db.read(lambda conn: conn.execute(query).all())
        return [ProductSales(row.product_id, row.units_sold, Money(row.revenue, row.currency))
                for row in rows]

    async def customer_summary(self, principal: Principal, customer_id: str) -> CustomerSummary:
        """The customer themself (with `orders:read`) or an admin: how many orders count
        (confirmed, not cancelled since) and what they total. No orders: zeros."""
        principal.require_scope(ORDERS_READ_SCOPE)
        if not is_valid_id(customer_id):
            raise NotFound("No such customer.")
        if customer_id != principal.subject and not principal.is_admin:
            raise Forbidden("You may only read your own summary.")
        return await self._db.read(lambda conn: self._summary(conn, customer_id))

    def _summary(self, conn: Connection, customer_id: str) -> CustomerSummary:
        rows = conn.execute(select(customer_summary).where(
            customer_summary.c.customer_id == customer_id)).all()
        count = sum(row.orders_count for row in rows)
        # One currency in practice; should there be several, the one with most orders shows.
        main = max(rows, key=lambda row: (row.orders_count, row.currency), default=None)
        spent = Money(main.total_spent, main.currency) if main else Money(0, self._currency)
        return CustomerSummary(customer_id, count, spent)

"""The orders' REST bodies. Requests are the same in both versions (no money goes in);
responses differ only in how money is written, which the routes render themselves.

Bodies forbid unknown fields (``status``, ``id``, prices are never client-settable) and are
strict (``"2"`` is not a quantity; ``2.0`` is, as JSON Schema reads an integer).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from archway.kernel.http.json_numbers import JsonInt
from archway.orders.domain import MAX_LINES, MAX_QUANTITY, LineRequest


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LineIn(_Body):
    product_id: str = Field(max_length=36, description="A product on sale.")
    quantity: JsonInt = Field(ge=1, le=MAX_QUANTITY)


class PlaceOrder(_Body):
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)

    def requested(self) -> list[LineRequest]:
        return [LineRequest(line.product_id, line.quantity) for line in self.lines]


class MoneyOut(BaseModel):
    amount: int
    currency: str


class _LineOut(BaseModel):
    product_id: str
    sku: str
    name: str
    quantity: int


class LineV1(_LineOut):
    unit_price: str
    line_total: str
    currency: str


class LineV2(_LineOut):
    unit_price: MoneyOut
    line_total: MoneyOut


class _OrderOut(BaseModel):
    id: str
    customer_id: str
    status: str = Field(examples=["pending"], description="pending, confirmed, rejected or "
                        "cancelled")
    rejection_reason: str | None = Field(description="Why the stock was refused, if it was.")
    placed_at: str
    updated_at: str


class OrderV1(_OrderOut):
    lines: list[LineV1]
    total: str
    currency: str


class OrderV2(_OrderOut):
    lines: list[LineV2]
    total: MoneyOut


class OrderPageV1(BaseModel):
    items: list[OrderV1]
    total: int
    limit: int
    offset: int


class OrderPageV2(BaseModel):
    data: list[OrderV2]
    next_cursor: str | None


class ProductSalesV1(BaseModel):
    product_id: str
    units_sold: int
    revenue: str
    currency: str


class ProductSalesV2(BaseModel):
    product_id: str
    units_sold: int
    revenue: MoneyOut


class TopProductsV1(BaseModel):
    items: list[ProductSalesV1] = Field(description="Most units sold first.")


class TopProductsV2(BaseModel):
    data: list[ProductSalesV2] = Field(description="Most units sold first.")


class _SummaryOut(BaseModel):
    customer_id: str
    orders_count: int = Field(description="Confirmed orders, less those cancelled since.")


class CustomerSummaryV1(_SummaryOut):
    total_spent: str
    currency: str


class CustomerSummaryV2(_SummaryOut):
    total_spent: MoneyOut

"""The orders' public port: what other contexts and composing adapters may ask of orders.

Like the catalog's port, its dataclasses are the contract, independent of the orders' read
models, so the in-process client (monolith) and a networked one (the orders service of the
microservices topology) answer with the same types. The answers come from the read side, and
the caller's principal travels with each question: the same ownership rule (a customer sees
only their orders; another's is not found) holds whoever asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from archway.kernel.auth.principal import Principal
from archway.kernel.money import Money
from archway.kernel.pagination import Page, PageRequest

if TYPE_CHECKING:
    from archway.orders.queries import OrderQueries, OrderView


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """An order as another context sees it: its state and what it costs, not its lines."""

    id: str
    customer_id: str
    status: str
    total: Money
    rejection_reason: str | None
    placed_at: str  # RFC 3339, UTC


class OrdersClient(Protocol):
    async def get_order(self, principal: Principal, order_id: str) -> OrderSummary:
        """The order, if ``principal`` may see it; ``NotFound`` otherwise."""
        ...

    async def list_orders(self, principal: Principal, page: PageRequest) -> Page[OrderSummary]:
        """The orders ``principal`` may see (an admin: everyone's), newest first."""
        ...


class InProcessOrdersClient:
    """The monolith's implementation: a direct call into the read side, no network."""

    def __init__(self, queries: OrderQueries) -> None:
        self._queries = queries

    async def get_order(self, principal: Principal, order_id: str) -> OrderSummary:
        return _summary(await self._queries.get_order(principal, order_id))

    async def list_orders(self, principal: Principal, page: PageRequest) -> Page[OrderSummary]:
        found = await self._queries.list_orders(principal, page)
        return Page([_summary(view) for view in found.items], total=found.total,
                    next_after=found.next_after)


def _summary(view: OrderView) -> OrderSummary:
    return OrderSummary(view.id, view.customer_id, view.status,
                        Money(view.total, view.currency), view.rejection_reason, view.placed_at)

"""The catalog's public port: what other contexts (orders) may ask of it, and nothing more.

The dataclasses here are the contract, independent of the catalog's domain model, so the
in-process client (monolith) and the gRPC client (microservices) answer with the same types.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from archway.kernel.money import Money

if TYPE_CHECKING:
    from archway.catalog.service import CatalogService


@dataclass(frozen=True, slots=True)
class ProductPrice:
    """A product's current price, for pricing an order's lines when it is placed."""

    product_id: str
    sku: str
    name: str
    price: Money
    active: bool


@dataclass(frozen=True, slots=True)
class ReservationLine:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ReservationResult:
    """Whether every line of an order is held; ``reason`` says why not when it is not."""

    order_id: str
    accepted: bool
    reason: str | None = None


class CatalogClient(Protocol):
    async def get_prices(self, product_ids: Collection[str]) -> dict[str, ProductPrice]:
        """Prices of the products that exist; unknown ids are absent from the answer."""
        ...

    async def reserve(
        self, order_id: str, lines: Sequence[ReservationLine]
    ) -> ReservationResult:
        """Hold stock for all lines or none; asking again for the same order answers the same."""
        ...

    async def release(self, order_id: str) -> None:
        """Give back what the order holds; idempotent."""
        ...


class InProcessCatalogClient:
    """The monolith's implementation: a direct call into the catalog service, no network."""

    def __init__(self, service: CatalogService[Any]) -> None:
        self._service = service

    async def get_prices(self, product_ids: Collection[str]) -> dict[str, ProductPrice]:
        products = await self._service.get_prices(product_ids)
        return {
            product.id: ProductPrice(
                product.id, product.sku, product.name, product.price, product.active)
            for product in products.values()
        }

    async def reserve(
        self, order_id: str, lines: Sequence[ReservationLine]
    ) -> ReservationResult:
        outcome = await self._service.reserve(
            order_id, [(line.product_id, line.quantity) for line in lines])
        return ReservationResult(outcome.order_id, outcome.accepted, outcome.reason)

    async def release(self, order_id: str) -> None:
        await self._service.release(order_id)

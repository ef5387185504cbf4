"""Catalog: products, prices and stock; public browsing, admin writes, stock for orders."""

from archway.catalog.client import (
    CatalogClient,
    InProcessCatalogClient,
    ProductPrice,
    ReservationLine,
    ReservationResult,
)

__all__ = [
    "CatalogClient",
    "InProcessCatalogClient",
    "ProductPrice",
    "ReservationLine",
    "ReservationResult",
]

"""Other contexts may use only the catalog's client port: pin what the package exports."""

from __future__ import annotations

import archway.catalog


def test_the_package_exports_only_the_client_port() -> None:
    assert sorted(archway.catalog.__all__) == [
        "CatalogClient", "InProcessCatalogClient", "ProductPrice", "ReservationLine",
        "ReservationResult",
    ]
    assert all(hasattr(archway.catalog, name) for name in archway.catalog.__all__)

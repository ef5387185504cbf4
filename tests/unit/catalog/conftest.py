"""The catalog service under test: the in-memory fakes and the real store, alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from archway.catalog.service import CatalogService
from archway.kernel.db import Database
from archway.topologies.monolith import Monolith
from tests.fakes import FakeProducts, FakeUnitsOfWork
from tests.unit.catalog.shop import Shop


@pytest.fixture(params=["fake", "real"])
async def service(
    request: pytest.FixtureRequest, graph: Monolith, database: Database
) -> AsyncIterator[CatalogService[Any]]:
    if request.param == "fake":
        yield CatalogService(FakeUnitsOfWork(), products=FakeProducts,
                             cache_ttl_seconds=0)
    else:
        yield graph.catalog  # the real store; `database` empties its tables afterwards



@pytest.fixture
def shop(service: CatalogService[Any]) -> Shop:
    return Shop(service)


"""The fakes' shared state and their units of work (see :mod:`tests.fakes`)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from archway.catalog.domain import (
    Product,
    ReservationStatus,
)
from archway.identity.domain import ApiKey, AuthorizationCode, OAuthClient, RefreshToken, User
from archway.kernel.events.cloudevent import Event
from archway.orders.domain import Order

T = TypeVar("T")


class FakeIntegrityError(Exception):
    """A row the real store would refuse with a driver ``IntegrityError`` that it does not
    translate (a second reservation row for one order): a bug, never a refusal to a client."""


@dataclass(frozen=True, slots=True)
class FakeReservation:
    """A row of ``catalog_reservations`` with its lines (kept after a release, like the rows)."""

    status: ReservationStatus
    reason: str | None
    updated_at: datetime
    lines: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FakeOutboxRow:
    position: int
    event: Event


@dataclass
class FakeState:
    users: dict[str, User] = field(default_factory=dict)
    clients: dict[str, OAuthClient] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)
    revoked_tokens: dict[str, datetime] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    reservations: dict[str, FakeReservation] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    placement_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    orders_outbox: list[FakeOutboxRow] = field(default_factory=list)
    committed: int = 0


class FakeUnitsOfWork:
    def __init__(self) -> None:
        self.state = FakeState()

    async def read(self, work: Callable[[Any], T]) -> T:
        return work(self.state)

    async def write(self, work: Callable[[Any], T]) -> T:
        snapshot = copy.deepcopy(self.state)
        try:
            result = work(self.state)
        except BaseException:
            self.state.__dict__.update(snapshot.__dict__)
            raise
        self.state.committed += 1
        return result

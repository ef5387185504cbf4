"""In-memory fakes of Archway's ports, honest enough to run the same tests as the real ones.

``FakeUnitsOfWork`` hands each unit of work its in-memory state and restores a snapshot when
a write raises, like a rolled-back transaction; repositories read and change that state.
There is one writer at a time and nothing to lock, so ``lock=True`` changes nothing here.
"""


from tests.fakes.catalog import FakeProducts
from tests.fakes.identity import (
    FakeApiKeys,
    FakeAuthorizationCodes,
    FakeClients,
    FakeRefreshTokens,
    FakeRevokedTokens,
    FakeUsers,
)
from tests.fakes.orders import FakeOrders
from tests.fakes.state import (
    FakeIntegrityError,
    FakeOutboxRow,
    FakeReservation,
    FakeState,
    FakeUnitsOfWork,
)

__all__ = [
    "FakeApiKeys",
    "FakeAuthorizationCodes",
    "FakeClients",
    "FakeIntegrityError",
    "FakeOrders",
    "FakeOutboxRow",
    "FakeProducts",
    "FakeRefreshTokens",
    "FakeReservation",
    "FakeRevokedTokens",
    "FakeState",
    "FakeUnitsOfWork",
    "FakeUsers",
]

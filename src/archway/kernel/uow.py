"""The unit-of-work port services are typed against, free of any database library.

A service hands :meth:`UnitsOfWork.read` or :meth:`UnitsOfWork.write` a function of the open
unit of work, ``Tx``, which it never looks into: it only passes it to the factories of its
repositories (the ports its context declares next to the service). The composition root picks
the pair: :class:`archway.kernel.db.Database` with SQLAlchemy connections and the context's
store, or tests' in-memory fakes with their state (``tests/fakes/``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

T = TypeVar("T")
Tx = TypeVar("Tx")
Tx_co = TypeVar("Tx_co", covariant=True)


class UnitsOfWork(Protocol[Tx_co]):
    """Runs units of work on ``Tx``: a write commits if its function returns and rolls back
    if it raises; a read sees committed data."""

    async def read(self, work: Callable[[Tx_co], T]) -> T: ...

    async def write(self, work: Callable[[Tx_co], T]) -> T: ...

"""Reserving stock for many orders at once, with the outcome each would get on its own.

A concurrent transaction recording one of the orders first fails the batch on the
reservation's key (``ReservationRecorded``); so does :class:`StockMoved`. Either way nothing of
the batch is kept, and the caller (a consumer) reserves the orders one by one.

The saga's consumer receives placed orders in batches. Deciding them one after another on the
locked products' stock as it stands after the orders before, then writing all the holds at
once, gives every order the answer it would get alone, in a handful of statements per batch
(every statement is a round trip on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from archway.catalog.domain import (
    Product,
    Rejected,
    ReservationOutcome,
    Reserved,
    merge_lines,
    reserve_all,
)


class Reserving(Protocol):
    """What :func:`reserve_in_turn` needs of the catalog's repository."""

    def get_many(
        self, product_ids: Collection[str], *, lock: bool = False
    ) -> dict[str, Product]: ...
    def reservations_of(self, order_ids: Collection[str]) -> dict[str, ReservationOutcome]: ...
    def hold_all(
        self, held: Sequence[tuple[str, Reserved]], rejected: Sequence[tuple[str, Rejected]],
        now: datetime,
    ) -> str | None: ...


class StockMoved(Exception):
    """A product's stock changed under the lock (a writer that skipped it): nothing was held;
    the caller decides again, one order at a time."""

    def __init__(self, product_id: str) -> None:
        super().__init__(f"the stock of {product_id} moved while it was locked")


def reserve_in_turn(
    repo: Reserving, orders: Sequence[tuple[str, Sequence[tuple[str, int]]]], now: datetime
) -> list[ReservationOutcome]:
    """Each order's outcome, in order: what was recorded for it before, else all its lines held
    or none, on the stock the orders before it left."""
    wanted = [(order_id, merge_lines(lines)) for order_id, lines in orders]
    decided: dict[str, ReservationOutcome] = dict(
        repo.reservations_of([order_id for order_id, _ in wanted]))
    products: Mapping[str, Product] = repo.get_many(
        sorted({product_id for _, quantities in wanted for product_id in quantities}), lock=True)
    held: list[tuple[str, Reserved]] = []
    rejected: list[tuple[str, Rejected]] = []
    outcomes = []
    for order_id, quantities in wanted:
        outcome = decided.get(order_id)
        if outcome is None:
            decision = reserve_all(products, list(quantities.items()))
            if isinstance(decision, Rejected):
                rejected.append((order_id, decision))
                outcome = ReservationOutcome(order_id, accepted=False, reason=decision.reason)
            else:
                held.append((order_id, decision))
                products = {**products, **{
                    product_id: replace(products[product_id], stock=stock)
                    for product_id, stock in decision.stocks.items()}}
                outcome = ReservationOutcome(order_id, accepted=True)
            decided[order_id] = outcome
        outcomes.append(outcome)
    short = repo.hold_all(held, rejected, now)
    if short is not None:
        raise StockMoved(short)
    return outcomes

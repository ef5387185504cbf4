"""Orders: the order saga's write side (commands, outbox) and read side (projections)."""

from archway.orders.events import (
    ORDER_CANCELLED,
    ORDER_CONFIRMED,
    ORDER_PLACED,
    ORDER_REJECTED,
    SOURCE,
)

__all__ = ["ORDER_CANCELLED", "ORDER_CONFIRMED", "ORDER_PLACED", "ORDER_REJECTED", "SOURCE"]

"""The orders context's integration events: versioned CloudEvents, the only thing another
context (or a projection) reads of an order.

Types are part of the public contract; a change of shape is a new ``.v2`` type, published next
to the old one until no consumer needs it. The catalog's answers the saga waits for are named
here too, as the orders context consumes them.
"""

from __future__ import annotations

from typing import Any

from archway.kernel.events.cloudevent import Event, make_event
from archway.orders.domain import (
    DomainEvent,
    Order,
    OrderCancelled,
    OrderConfirmed,
    OrderLine,
    OrderPlaced,
    OrderRejected,
)

SOURCE = "/archway/orders"
ORDER_PLACED = "archway.orders.order_placed.v1"
ORDER_CONFIRMED = "archway.orders.order_confirmed.v1"
ORDER_REJECTED = "archway.orders.order_rejected.v1"
ORDER_CANCELLED = "archway.orders.order_cancelled.v1"
ORDER_EVENT_TYPES = (ORDER_PLACED, ORDER_CONFIRMED, ORDER_REJECTED, ORDER_CANCELLED)

# Consumed from the catalog (its contract, spelled out here so orders imports no catalog code).
STOCK_RESERVED = "archway.catalog.stock_reserved.v1"
STOCK_REJECTED = "archway.catalog.stock_rejected.v1"


def line_data(line: OrderLine) -> dict[str, Any]:
    return {
        "product_id": line.product_id, "sku": line.sku, "name": line.name,
        "quantity": line.quantity, "unit_price": line.unit_price.amount,
    }


def integration_event(order: Order, event: DomainEvent) -> Event:
    """The CloudEvent that tells the world about one change of ``order``.

    Every event carries the order's ``version`` after the change, so a read model can ignore
    one it has already applied, and ``customer_id``, so it needs no lookup.
    """
    common: dict[str, Any] = {
        "order_id": order.id, "customer_id": order.customer_id, "version": order.version,
        "status": str(order.status), "at": order.updated_at.isoformat(),
    }
    match event:
        case OrderPlaced():
            event_type = ORDER_PLACED
            data = {
                **common, "currency": order.total.currency, "total": order.total.amount,
                "placed_at": order.placed_at.isoformat(),
                "lines": [line_data(line) for line in order.lines],
            }
        case OrderConfirmed():
            event_type, data = ORDER_CONFIRMED, common
        case OrderRejected(reason=reason):
            event_type, data = ORDER_REJECTED, {**common, "reason": reason}
        case OrderCancelled(was=was):
            event_type, data = ORDER_CANCELLED, {**common, "previous_status": str(was)}
    return make_event(event_type, SOURCE, order.id, data, time=order.updated_at)


def drain(order: Order) -> list[Event]:
    """The integration events for what ``order`` recorded; its record is emptied."""
    events = [integration_event(order, event) for event in order.events]
    order.events.clear()
    return events

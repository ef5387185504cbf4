"""The report read models: ``customer_summary`` and ``product_sales``, built from events only.

What counts as a sale, the one rule both share:

* an order counts **when it is confirmed** (``order_confirmed``): the stock is held, the
  sale is real. Its customer gets one more order and its total; each line's product gets its
  quantity and the line's amount (quantity × the unit price the order was placed at);
* a **confirmed order that is cancelled** (``order_cancelled`` with ``previous_status``
  ``confirmed``) is taken back out, by exactly what it added;
* ``order_placed``, ``order_rejected`` and the cancellation of a pending order change nothing
  (a pending order never counted). They are still recorded in the projection's inbox.

``order_confirmed`` and ``order_cancelled`` do not repeat the order's lines and total; the
``order_placed`` event that does is read back from the orders' event log (the outbox), which
keeps every event. Rows are per currency: amounts in different currencies are never added.

Sums stay exact: an order's total is at most :data:`~archway.kernel.money.MAX_AMOUNT`, so a
BIGINT sum holds over 9 million orders at that bound; one that would pass
:data:`~archway.kernel.money.MAX_ACCUMULATED` fails its event
(:class:`~archway.orders.counters.SumOverflow`) instead of being stored wrong (PostgreSQL would
refuse it too, SQLite would turn it into a float).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, select
from sqlalchemy.engine import Connection

from archway.kernel.events.cloudevent import Event, data_of, from_json, handling
from archway.orders.counters import Deltas, Key, add_all, add_to
from archway.orders.events import ORDER_CANCELLED, ORDER_CONFIRMED, ORDER_PLACED
from archway.orders.projections import Projection
from archway.orders.store import customer_summary, orders_outbox, product_sales

CUSTOMER_SUMMARY_CONSUMER = "orders.customer_summary"
PRODUCT_SALES_CONSUMER = "orders.product_sales"


@dataclass(frozen=True, slots=True)
class CountedChange:
    """A sale entering (+1) or leaving (-1) the reports, with the order as it was placed."""

    sign: int
    placed: Mapping[str, Any]


def counted_change(conn: Connection, event: Event) -> CountedChange | None:
    """How ``event`` changes the reports, or None when it does not (see the module's rules)."""
    data = data_of(event)
    if event.get_type() == ORDER_PLACED:
        _remember_placed(data)
        return None
    if event.get_type() == ORDER_CONFIRMED:
        sign = 1
    elif event.get_type() == ORDER_CANCELLED and data.get("previous_status") == "confirmed":
        sign = -1
    else:
        return None
    return CountedChange(sign, placed_data(conn, str(data["order_id"])))


_PLACED_PAYLOAD = select(orders_outbox.c.payload).where(
    orders_outbox.c.subject == bindparam("order_id"),
    orders_outbox.c.event_type == ORDER_PLACED,
).limit(1)


# An order's order_placed never changes, and both report projections see it go by just before
# they need it again (at order_confirmed): kept here, it saves each of them a read of the log
# and a parse per order. Bounded; a miss reads the log.
_PLACED: OrderedDict[str, Mapping[str, Any]] = OrderedDict()
_PLACED_KEPT = 10_000


def _remember_placed(data: Mapping[str, Any]) -> None:
    _PLACED[str(data["order_id"])] = data
    if len(_PLACED) > _PLACED_KEPT:
        _PLACED.popitem(last=False)


def placed_data(conn: Connection, order_id: str) -> Mapping[str, Any]:
    kept = _PLACED.get(order_id)
    if kept is not None:
        return kept
    payload = conn.execute(_PLACED_PAYLOAD, {"order_id": order_id}).scalar_one_or_none()
    if payload is None:  # the log lost an event: a bug to surface, not to count around
        raise LookupError(f"order {order_id} has no {ORDER_PLACED} in the orders log")
    return data_of(from_json(payload))


class CountingProjection(Projection):
    """A report: each counted change adds deltas to rows found by key. A batch's deltas are
    summed per row first (addition commutes), then written in a few statements; the sums are
    followed event by event, so one that would overflow fails the batch as it would alone."""

    table: Table

    def deltas(self, change: CountedChange) -> Iterator[tuple[Key, Deltas]]:
        raise NotImplementedError

    def apply(self, conn: Connection, event: Event) -> None:
        change = counted_change(conn, event)
        if change is None:
            return
        for key, deltas in self.deltas(change):
            add_to(conn, self.table, dict(key), deltas)

    def apply_batch(self, conn: Connection, events: Sequence[Event]) -> None:
        changes: list[tuple[Key, Deltas]] = []
        for event in events:
            with handling(event):
                change = counted_change(conn, event)
            if change is not None:
                changes.extend(self.deltas(change))
        add_all(conn, self.table, changes)


class CustomerSummaryProjection(CountingProjection):
    """``orders_customer_summary``: per customer and currency, orders counted and spent."""

    consumer = CUSTOMER_SUMMARY_CONSUMER
    tables = (customer_summary,)
    table = customer_summary

    def deltas(self, change: CountedChange) -> Iterator[tuple[Key, Deltas]]:
        placed = change.placed
        yield ((("customer_id", placed["customer_id"]), ("currency", placed["currency"])),
               {"orders_count": change.sign, "total_spent": change.sign * placed["total"]})


class ProductSalesProjection(CountingProjection):
    """``orders_product_sales``: per product and currency, units sold and revenue."""

    consumer = PRODUCT_SALES_CONSUMER
    tables = (product_sales,)
    table = product_sales

    def deltas(self, change: CountedChange) -> Iterator[tuple[Key, Deltas]]:
        currency = change.placed["currency"]
        for line in change.placed["lines"]:
            quantity = change.sign * int(line["quantity"])
            yield ((("product_id", line["product_id"]), ("currency", currency)),
                   {"units_sold": quantity, "revenue": quantity * int(line["unit_price"])})

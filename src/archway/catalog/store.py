"""Catalog persistence: the catalog's tables (products, stock, what it recorded per order, its
outbox, inbox and dead letters), row ↔ domain mapping and conditional writes over them; the
list's filters and cursors are in :mod:`archway.catalog.listing`. Every table registers on
``catalog_metadata``, which the catalog's migrations compare against, so the context moves to
its own database in one piece.

Writers lock product rows first (``FOR UPDATE`` on PostgreSQL; SQLite serializes writers
anyway), always in id order, and only then touch stock rows, so no two writers wait on each
other in opposite orders. Every write is conditional (``WHERE version = :expected``, ``WHERE
on_hand - reserved >= :quantity``), so the check and the write are one atomic statement even
where no lock is held.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from archway.catalog import listing
from archway.catalog.domain import (
    Product,
    ProductFilters,
    ProductSort,
    Rejected,
    ReservationOutcome,
    ReservationRecorded,
    ReservationStatus,
    Reserved,
    Stock,
)
from archway.kernel.clock import as_utc
from archway.kernel.errors import AlreadyExists
from archway.kernel.events.tables import dead_letter_table, inbox_table, outbox_table
from archway.kernel.money import Money
from archway.kernel.pagination import Page, PageRequest
from archway.kernel.statements import DriverRead, DriverWrite

T = TypeVar("T")

catalog_metadata = MetaData()

products = Table(
    "catalog_products",
    catalog_metadata,
    Column("id", String(36), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("category", String(64), nullable=False),
    Column("price_amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("sku", name="uq_catalog_products_sku"),
    Index("ix_catalog_products_category", "category"),
    Index("ix_catalog_products_name_id", "name", "id"),
    Index("ix_catalog_products_price_id", "price_amount", "id"),
    Index("ix_catalog_products_created_at_id", "created_at", "id"),
)

stock = Table(
    "catalog_stock",
    catalog_metadata,
    Column(
        "product_id", String(36),
        ForeignKey("catalog_products.id", ondelete="CASCADE"), primary_key=True,
    ),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    CheckConstraint("on_hand >= 0", name="ck_catalog_stock_on_hand"),
    CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="ck_catalog_stock_reserved"),
)

# One row per order the catalog has heard of, so a redelivered reserve or release (events come
# at least once, and a cancel may overtake its reserve) replays the first outcome instead of
# holding or giving back stock twice.
reservations = Table(
    "catalog_reservations",
    catalog_metadata,
    Column("order_id", String(36), primary_key=True),
    Column("status", String(16), nullable=False),  # held | released | rejected | cancelled
    Column("reason", String(500), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

reservation_lines = Table(
    "catalog_reservation_lines",
    catalog_metadata,
    Column(
        "order_id", String(36),
        ForeignKey("catalog_reservations.order_id", ondelete="CASCADE"), primary_key=True,
    ),
    Column("product_id", String(36), primary_key=True),
    Column("quantity", Integer, nullable=False),
)

catalog_outbox = outbox_table(catalog_metadata, "catalog")
catalog_inbox = inbox_table(catalog_metadata, "catalog")
catalog_dead_letters = dead_letter_table(catalog_metadata, "catalog")

_SELECT_PRODUCT = select(products, stock.c.on_hand, stock.c.reserved).join(
    stock, stock.c.product_id == products.c.id
)
# The product page is the hottest read: its statements are built once, not per request.
_BY_ID = _SELECT_PRODUCT.where(products.c.id == bindparam("product_id"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update(of=products)
# So are the saga's (several per order placed): building a statement costs more than running it.
_SELECT_MANY = _SELECT_PRODUCT.where(
    products.c.id.in_(bindparam("product_ids", expanding=True))).order_by(products.c.id)
_MANY = DriverRead(_SELECT_MANY)
_MANY_FOR_UPDATE = DriverRead(_SELECT_MANY.with_for_update(of=products))
_RESERVATION = DriverRead(
    select(reservations).where(reservations.c.order_id == bindparam("order_id")))
_RESERVATIONS_OF = select(reservations).where(
    reservations.c.order_id.in_(bindparam("order_ids", expanding=True)))
_HOLD_LINE = DriverWrite(update(stock).where(
    stock.c.product_id == bindparam("line_product"),
    stock.c.on_hand - stock.c.reserved >= bindparam("line_quantity"),
).values(reserved=stock.c.reserved + bindparam("line_quantity")))
_BUMP_VERSION = DriverWrite(update(products).where(
    products.c.id == bindparam("b_product")).values(
    version=products.c.version + 1, updated_at=bindparam("b_now")))
_GIVE_BACK_LINE = DriverWrite(update(stock).where(
    stock.c.product_id == bindparam("line_product"),
).values(reserved=stock.c.reserved - bindparam("line_quantity")))
_INSERT_RESERVATION = DriverWrite(insert(reservations))
_INSERT_RESERVATION_LINES = DriverWrite(insert(reservation_lines))



def _product(row: Any) -> Product:  # a Core row or a DriverRead row
    return Product(
        id=row.id, sku=row.sku, name=row.name, description=row.description,
        category=row.category, price=Money(row.price_amount, row.currency),
        active=bool(row.active), version=row.version,
        created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at),
        stock=Stock(row.on_hand, row.reserved),
    )


def _values(product: Product) -> dict[str, object]:
    return {
        "sku": product.sku, "name": product.name, "description": product.description,
        "category": product.category, "price_amount": product.price.amount,
        "currency": product.price.currency, "active": product.active,
        "version": product.version, "updated_at": product.updated_at,
    }


class CatalogRepository:
    """Products, stock and reservations on one connection (and so in one transaction)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, product_id: str, *, lock: bool = False) -> Product | None:
        query = _BY_ID_FOR_UPDATE if lock else _BY_ID
        row = self._conn.execute(query, {"product_id": product_id}).first()
        return _product(row) if row else None

    def get_many(
        self, product_ids: Collection[str], *, lock: bool = False
    ) -> dict[str, Product]:
        """The products that exist among ``product_ids``; locked in id order when asked."""
        if not product_ids:
            return {}
        query = _MANY_FOR_UPDATE if lock else _MANY
        rows = query.all(self._conn, {"product_ids": list(product_ids)})
        return {row.id: _product(row) for row in rows}

    def add(self, product: Product) -> None:
        try:
            self._conn.execute(
                insert(products).values(id=product.id, created_at=product.created_at,
                                        **_values(product)))
        except IntegrityError as exc:
            raise AlreadyExists(f"A product with sku {product.sku!r} already exists.") from exc
        self._conn.execute(insert(stock).values(
            product_id=product.id, on_hand=product.stock.on_hand,
            reserved=product.stock.reserved))

    def save(self, product: Product, previous_version: int) -> bool:
        """Write the product's own fields if it is still at ``previous_version``."""
        try:
            result = self._conn.execute(update(products).where(
                products.c.id == product.id, products.c.version == previous_version,
            ).values(**_values(product)))
        except IntegrityError as exc:
            raise AlreadyExists(f"A product with sku {product.sku!r} already exists.") from exc
        return bool(result.rowcount)

    def save_on_hand(self, product: Product, previous_version: int) -> bool:
        """Write a stock count if the product is still at ``previous_version`` and the count
        still covers what is reserved."""
        result = self._conn.execute(update(products).where(
            products.c.id == product.id, products.c.version == previous_version,
        ).values(version=product.version, updated_at=product.updated_at))
        if not result.rowcount:
            return False
        counted = self._conn.execute(update(stock).where(
            stock.c.product_id == product.id, stock.c.reserved <= product.stock.on_hand,
        ).values(on_hand=product.stock.on_hand))
        return bool(counted.rowcount)

    def remove(self, product_id: str, version: int) -> bool:
        result = self._conn.execute(delete(products).where(
            products.c.id == product_id, products.c.version == version))
        return bool(result.rowcount)

    def list(
        self, filters: ProductFilters, sort: ProductSort, page: PageRequest, *, active_only: bool
    ) -> Page[Product]:
        where = listing.conditions(products, filters, active_only)
        key = listing.sort_column(products, sort)
        descending = sort is ProductSort.PRICE_DESC
        order = (key.desc(), products.c.id.desc()) if descending else (key, products.c.id)
        query = _SELECT_PRODUCT.where(*where).order_by(*order)
        if not page.wants_cursor:
            total = self._conn.execute(
                select(func.count()).select_from(products).where(*where)).scalar_one()
            rows = self._conn.execute(query.limit(page.limit).offset(page.offset)).all()
            return Page([_product(row) for row in rows], total=total)
        if page.after is not None:
            query = query.where(listing.past_cursor(products, sort, page.after, descending))
        rows = self._conn.execute(query.limit(page.limit + 1)).all()
        items = [_product(row) for row in rows[: page.limit]]
        more = len(rows) > page.limit
        return Page(items, next_after=listing.cursor_of(sort, items[-1]) if more else None)

    # -- reservations ---------------------------------------------------------------------

    def reservation(self, order_id: str) -> ReservationOutcome | None:
        """What was decided the first time this order came by, if it did."""
        row = _RESERVATION.first(self._conn, {"order_id": order_id})
        if row is None:
            return None
        return ReservationOutcome.recorded(order_id, ReservationStatus(row.status), row.reason)

    def hold(self, order_id: str, reserved: Reserved, now: datetime) -> str | None:
        """Hold every line, or none: the id of the first product that fell short, else None.

        The products must be locked by the caller. Each line is one conditional statement, so
        stock cannot be oversold even by a writer that skipped the lock; a line that falls
        short gives back the lines held before it, in the same transaction (what a savepoint
        would do, without its two statements on every order).
        """
        ids = list(reserved.quantities)
        held: list[dict[str, object]] = []
        for product_id, quantity in reserved.quantities.items():
            line = {"line_product": product_id, "line_quantity": quantity}
            if not _HOLD_LINE.execute(self._conn, line):
                _GIVE_BACK_LINE.execute(self._conn, held)
                return product_id
            held.append(line)
        self._bump_versions(ids, now)
        self._record(order_id, ReservationStatus.HELD, None, now)
        _INSERT_RESERVATION_LINES.execute(self._conn, [
            {"order_id": order_id, "product_id": product_id, "quantity": quantity}
            for product_id, quantity in reserved.quantities.items()
        ])
        return None

    def reservations_of(self, order_ids: Collection[str]) -> dict[str, ReservationOutcome]:
        """:meth:`reservation` for several orders, in one statement."""
        rows = self._conn.execute(_RESERVATIONS_OF, {"order_ids": sorted(set(order_ids))})
        return {row.order_id: ReservationOutcome.recorded(
            row.order_id, ReservationStatus(row.status), row.reason) for row in rows}

    def hold_all(
        self, held: Sequence[tuple[str, Reserved]], rejected: Sequence[tuple[str, Rejected]],
        now: datetime,
    ) -> str | None:
        """:meth:`hold` and :meth:`record_rejection` for several orders decided together (the
        products locked by the caller): one conditional statement per product for the sum of
        its lines, then each kind of row in one statement. The id of a product that fell short
        (then nothing is held), else None."""
        totals: dict[str, int] = {}
        for _, reserved in held:
            for product_id, quantity in reserved.quantities.items():
                totals[product_id] = totals.get(product_id, 0) + quantity
        done: list[dict[str, object]] = []
        for product_id in sorted(totals):
            line = {"line_product": product_id, "line_quantity": totals[product_id]}
            if not _HOLD_LINE.execute(self._conn, line):
                _GIVE_BACK_LINE.execute(self._conn, done)
                return product_id
            done.append(line)
        if totals:
            self._bump_versions(sorted(totals), now)
        rows = [{"order_id": order_id, "status": ReservationStatus.HELD.value, "reason": None,
                 "updated_at": now} for order_id, _ in held]
        rows += [{"order_id": order_id, "status": ReservationStatus.REJECTED.value,
                  "reason": decision.reason, "updated_at": now} for order_id, decision in rejected]
        if rows:
            try:
                _INSERT_RESERVATION.execute(self._conn, rows)
            except IntegrityError as exc:  # another transaction recorded one of them first
                recorded = ", ".join(order_id for order_id, _ in [*held, *rejected])
                raise ReservationRecorded(recorded) from exc
        lines = [{"order_id": order_id, "product_id": product_id, "quantity": quantity}
                 for order_id, reserved in held
                 for product_id, quantity in reserved.quantities.items()]
        if lines:
            _INSERT_RESERVATION_LINES.execute(self._conn, lines)
        return None

    def record_rejection(self, order_id: str, rejected: Rejected, now: datetime) -> None:
        self._record(order_id, ReservationStatus.REJECTED, rejected.reason, now)

    def held_lines(self, order_id: str) -> dict[str, int] | None:
        """The lines an order holds; ``None`` if the catalog never heard of the order,
        empty if it holds nothing (rejected, released or cancelled)."""
        status = self._conn.execute(select(reservations.c.status).where(
            reservations.c.order_id == order_id)).scalar_one_or_none()
        if status is None:
            return None
        if status != ReservationStatus.HELD:
            return {}
        rows = self._conn.execute(select(
            reservation_lines.c.product_id, reservation_lines.c.quantity,
        ).where(reservation_lines.c.order_id == order_id).order_by(reservation_lines.c.product_id))
        return {row.product_id: row.quantity for row in rows}

    def give_back(self, order_id: str, stocks: Mapping[str, Stock], now: datetime) -> None:
        """Write the stocks of an order's released lines (products locked by the caller, so
        nobody else moves ``reserved`` meanwhile) and mark the order released."""
        for product_id, released in stocks.items():
            self._conn.execute(update(stock).where(stock.c.product_id == product_id).values(
                reserved=released.reserved))
        self._bump_versions(list(stocks), now)
        self._conn.execute(update(reservations).where(
            reservations.c.order_id == order_id,
        ).values(status=ReservationStatus.RELEASED.value, updated_at=now))

    def record_cancellation(self, order_id: str, now: datetime) -> None:
        """A release that overtook its reserve: the reserve, when it comes, holds nothing."""
        self._record(order_id, ReservationStatus.CANCELLED, None, now)

    def first_recorder(self, decide: Callable[[], T]) -> T:
        """``decide`` in this transaction; if a concurrent transaction recorded the order first,
        roll back to before it and decide again (which then answers as that one did). Only
        PostgreSQL runs two writers at once; SQLite serializes them, so no savepoint there."""
        if self._conn.dialect.name != "postgresql":
            return decide()
        try:
            with self._conn.begin_nested():
                return decide()
        except ReservationRecorded:
            return decide()

    def _record(
        self, order_id: str, status: ReservationStatus, reason: str | None, now: datetime
    ) -> None:
        try:
            _INSERT_RESERVATION.execute(self._conn, {
                "order_id": order_id, "status": status.value, "reason": reason,
                "updated_at": now})
        except IntegrityError as exc:  # another transaction recorded this order first
            raise ReservationRecorded(order_id) from exc

    def _bump_versions(self, product_ids: Sequence[str], now: datetime) -> None:
        """A change of stock is a change of the product: its ETag must change too."""
        _BUMP_VERSION.execute(
            self._conn, [{"b_product": product_id, "b_now": now} for product_id in product_ids])

"""The catalog's tables: products, their stock, and what the catalog recorded per order.

Every table registers on ``catalog_metadata``, which the catalog's migrations compare against
(the outbox and inbox in :mod:`archway.catalog.event_tables` too).
"""

from __future__ import annotations

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
)

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

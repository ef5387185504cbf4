"""Products, stock and reservations.

Revision ID: catalog_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "catalog_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_products",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("price_amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("sku", name="uq_catalog_products_sku"),
    )
    op.create_index("ix_catalog_products_category", "catalog_products", ["category"])
    op.create_index("ix_catalog_products_name_id", "catalog_products", ["name", "id"])
    op.create_index("ix_catalog_products_price_id", "catalog_products", ["price_amount", "id"])
    op.create_index(
        "ix_catalog_products_created_at_id", "catalog_products", ["created_at", "id"])
    op.create_table(
        "catalog_stock",
        sa.Column(
            "product_id", sa.String(36),
            sa.ForeignKey("catalog_products.id", ondelete="CASCADE"), primary_key=True,
        ),
        sa.Column("on_hand", sa.Integer, nullable=False),
        sa.Column("reserved", sa.Integer, nullable=False),
        sa.CheckConstraint("on_hand >= 0", name="ck_catalog_stock_on_hand"),
        sa.CheckConstraint(
            "reserved >= 0 AND reserved <= on_hand", name="ck_catalog_stock_reserved"),
    )
    op.create_table(
        "catalog_reservations",
        sa.Column("order_id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "catalog_reservation_lines",
        sa.Column(
            "order_id", sa.String(36),
            sa.ForeignKey("catalog_reservations.order_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("product_id", sa.String(36), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("catalog_reservation_lines")
    op.drop_table("catalog_reservations")
    op.drop_table("catalog_stock")
    op.drop_table("catalog_products")

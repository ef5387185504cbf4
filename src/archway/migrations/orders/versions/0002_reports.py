"""Orders: the report read models (customer_summary, product_sales) and an index that finds an
order's events in the outbox.

Revision ID: orders_0002
Revises: orders_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0002"
down_revision = "orders_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_orders_outbox_subject", "orders_outbox", ["subject", "position"])
    op.create_table(
        "orders_customer_summary",
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("orders_count", sa.Integer, nullable=False),
        sa.Column("total_spent", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "orders_product_sales",
        sa.Column("product_id", sa.String(36), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("units_sold", sa.BigInteger, nullable=False),
        sa.Column("revenue", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_orders_product_sales_units_sold", "orders_product_sales", ["units_sold"])


def downgrade() -> None:
    op.drop_table("orders_product_sales")
    op.drop_table("orders_customer_summary")
    op.drop_index("ix_orders_outbox_subject", table_name="orders_outbox")

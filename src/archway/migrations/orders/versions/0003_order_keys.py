"""Orders: the Idempotency-Key each order was placed with, in the order's own transaction.

Revision ID: orders_0003
Revises: orders_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0003"
down_revision = "orders_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders_placement_keys",
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("idempotency_key", sa.String(255), primary_key=True),
        sa.Column("order_id", sa.String(36), sa.ForeignKey("orders_orders.id"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("orders_placement_keys")

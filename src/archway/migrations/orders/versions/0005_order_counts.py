"""Orders: how many orders each customer has in the order view, for the pages' totals.

Revision ID: orders_0005
Revises: orders_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "orders_0005"
down_revision = "orders_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders_order_counts",
        sa.Column("customer_id", sa.String(36), primary_key=True),
        sa.Column("orders", sa.BigInteger, nullable=False),
    )
    op.execute(
        "INSERT INTO orders_order_counts (customer_id, orders) "
        "SELECT customer_id, count(*) FROM orders_order_view GROUP BY customer_id")


def downgrade() -> None:
    op.drop_table("orders_order_counts")

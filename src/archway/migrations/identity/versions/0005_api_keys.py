"""API keys for machine consumers: stored as SHA-256 digests, each with a plan and scopes.

Revision ID: identity_0005
Revises: identity_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0005"
down_revision = "identity_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("consumer", sa.String(100), nullable=False),
        sa.Column("plan", sa.String(20), nullable=False),
        sa.Column("scopes", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("identity_api_keys")

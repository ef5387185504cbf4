"""Table factories for the outbox and the inbox.

Each context calls these with its own ``MetaData``, so its events live in its own schema and
move with it to its own database when it becomes a service; the kernel owns the shape only.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
Position = BigInteger().with_variant(Integer(), "sqlite")


def outbox_table(metadata: MetaData, context: str) -> Table:
    """``<context>_outbox``: events written with the change that caused them.

    ``position`` gives the publishing order; ``published_at`` is null until a relay has
    handed the event to the bus; ``attempts`` and ``last_error`` show a stuck event.
    """
    name = f"{context}_outbox"
    return Table(
        name,
        metadata,
        Column("position", Position, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
        Column("last_error", Text, nullable=True),
        UniqueConstraint("event_id", name=f"uq_{name}_event_id"),
        Index(f"ix_{name}_unpublished", "published_at", "position"),
    )


def inbox_table(metadata: MetaData, context: str) -> Table:
    """``<context>_inbox``: the events each of the context's consumers has already handled."""
    return Table(
        f"{context}_inbox",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("event_type", String(200), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


def dead_letter_table(metadata: MetaData, context: str) -> Table:
    """``<context>_dead_letters``: events one of the context's consumers gave up on (parked).

    It sits beside the inbox because it is the consumer's state, not the producer's: the
    catalog's consumer of order events parks them in the catalog's table. ``payload`` is the
    whole CloudEvent, so a retry needs nothing from the outbox (which may be another context's
    database). ``id`` is a UUIDv7, unique across every context's table, so an operator names a
    dead letter without saying where it lives.
    """
    name = f"{context}_dead_letters"
    return Table(
        name,
        metadata,
        Column("id", String(36), primary_key=True),
        Column("consumer", String(100), nullable=False),
        Column("event_id", String(64), nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("payload", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("last_error", Text, nullable=False),
        Column("parked_at", DateTime(timezone=True), nullable=False),
        Column("last_failed_at", DateTime(timezone=True), nullable=False),
        UniqueConstraint("consumer", "event_id", name=f"uq_{name}_consumer_event"),
    )

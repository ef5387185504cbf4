"""Tables the kernel itself owns (each context declares its own in its ``store.py``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, String, Table, Text

kernel_metadata = MetaData()

idempotency_keys = Table(
    "idempotency_keys",
    kernel_metadata,
    Column("owner", String(200), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("locked_until", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),
    Column("status_code", Integer),
    Column("response_headers", Text),
    Column("response_body", LargeBinary),
)

outbox_leases = Table(
    "kernel_outbox_leases",
    kernel_metadata,
    Column("outbox", String(100), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
"""Which relay may publish an outbox now (see :mod:`archway.kernel.events.lease`);
``expires_at`` is Unix milliseconds (``idempotency_keys`` counts in seconds)."""

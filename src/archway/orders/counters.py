"""Counters in read models: deltas added to rows found by key, created from zero.

Portable (no dialect upsert): a concurrent creation fails on the key, and the consumer that
wrote it is retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from archway.kernel.statements import DriverWrite

Key = tuple[tuple[str, Any], ...]
"""A row's key as ``((column, value), ...)``, hashable, in the table's key order."""
Deltas = dict[str, int]


def add_to(
    conn: Connection, table: Table, key: Mapping[str, Any], deltas: Mapping[str, int]
) -> None:
    """Add ``deltas`` to the row at ``key``, creating it from zero. Portable (no dialect
    upsert); a concurrent creation fails on the key, and the consumer is retried."""
    add, create = _adding(table, tuple(key), tuple(deltas))
    params = {**{f"key_{name}": value for name, value in key.items()},
              **{f"delta_{name}": delta for name, delta in deltas.items()}}
    if not add.execute(conn, params):
        create.execute(conn, {**key, **deltas})


def add_all(conn: Connection, table: Table, rows: Mapping[Key, Deltas]) -> None:
    """:func:`add_to` for every row at once: one read of which rows exist, then the updates
    and the creations each as one statement for all of them."""
    first = next(iter(rows))
    key_names = tuple(name for name, _ in first)
    delta_names = tuple(rows[first])
    add, create = _adding(table, key_names, delta_names)
    lead = table.c[key_names[0]]
    existing = {tuple(row) for row in conn.execute(
        select(*(table.c[name] for name in key_names)).where(
            lead.in_(sorted({key[0][1] for key in rows}))))}
    updates, creations = [], []
    for key, deltas in rows.items():
        if tuple(value for _, value in key) in existing:
            updates.append({**{f"key_{name}": value for name, value in key},
                            **{f"delta_{name}": delta for name, delta in deltas.items()}})
        else:
            creations.append({**dict(key), **deltas})
    if updates:
        add.execute(conn, updates)
    if creations:
        create.execute(conn, creations)


@cache
def _adding(
    table: Table, keys: tuple[str, ...], deltas: tuple[str, ...]
) -> tuple[DriverWrite, DriverWrite]:
    """The update and the insert of :func:`add_to`, built once per table and shape."""
    add = update(table).where(*(table.c[name] == bindparam(f"key_{name}") for name in keys))
    add = add.values({table.c[name]: table.c[name] + bindparam(f"delta_{name}")
                      for name in deltas})
    return DriverWrite(add), DriverWrite(insert(table))

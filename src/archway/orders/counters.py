"""Counters in read models: deltas added to rows found by key, created from zero.

Portable (no dialect upsert): a concurrent creation fails on the key, and the consumer that
wrote it is retried.

Sums stay exact: one that would pass what its column stores
(:data:`~archway.kernel.money.MAX_ACCUMULATED` for a BIGINT, 2³¹-1 for an INTEGER count)
changes nothing and raises :class:`SumOverflow`, failing its event instead of being stored
wrong (PostgreSQL would refuse it too, SQLite would turn it into a float).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Select, Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from archway.kernel.money import MAX_ACCUMULATED
from archway.kernel.statements import DriverWrite

Key = tuple[tuple[str, Any], ...]
"""A row's key as ``((column, value), ...)``, hashable, in the table's key order."""
Deltas = dict[str, int]


class SumOverflow(ArithmeticError):
    """A read model's sum would pass :data:`~archway.kernel.money.MAX_ACCUMULATED` (or what
    its column stores)."""


def add_to(
    conn: Connection, table: Table, key: Mapping[str, Any], deltas: Mapping[str, int]
) -> None:
    """Add ``deltas`` to the row at ``key``, creating it from zero. A sum that would pass
    what its column stores changes nothing and raises :class:`SumOverflow`."""
    add, create, exists = _adding(table, tuple(key), tuple(deltas))
    params = {**{f"key_{name}": value for name, value in key.items()},
              **{f"delta_{name}": delta for name, delta in deltas.items()},
              # compared, never computed, so the check itself cannot overflow
              **{f"ceiling_{name}": _largest(table, name) - max(delta, 0)
                 for name, delta in deltas.items()}}
    if add.execute(conn, params):
        return
    if conn.execute(exists, params).first() is not None:
        raise _overflow(table, dict(key), deltas)
    create.execute(conn, {**key, **deltas})


def add_all(conn: Connection, table: Table, changes: Iterable[tuple[Key, Deltas]]) -> None:
    """:func:`add_to` for each ``(key, deltas)`` in turn, written at once: one read of the rows
    (locked, so they cannot move before they are written), then the updates and the creations
    each as one statement for all of them. The rows' sums are followed change by change, so a
    change that :func:`add_to` would refuse raises :class:`SumOverflow` here too (and nothing
    is written): the consumer then applies its events one by one, which isolates that one."""
    changes = list(changes)
    if not changes:
        return
    first_key, first_deltas = changes[0]
    key_names = tuple(name for name, _ in first_key)
    delta_names = tuple(first_deltas)
    lead = table.c[key_names[0]]
    current: dict[Key, Deltas] = {}
    for found in conn.execute(
        select(*(table.c[name] for name in (*key_names, *delta_names)))
        .where(lead.in_(sorted({key[0][1] for key, _ in changes})))
        .order_by(*(table.c[name] for name in key_names))
        .with_for_update()
    ):
        values = tuple(found)
        key = tuple(zip(key_names, values[:len(key_names)], strict=True))
        current[key] = dict(zip(delta_names, values[len(key_names):], strict=True))
    existing = set(current)
    for key, deltas in changes:
        sums = current.setdefault(key, dict.fromkeys(delta_names, 0))
        for name, delta in deltas.items():
            if delta > 0 and sums[name] > _largest(table, name) - delta:
                raise _overflow(table, dict(key), deltas)
            sums[name] += delta
    summed: dict[Key, Deltas] = {}
    for key, deltas in changes:
        total = summed.setdefault(key, dict.fromkeys(delta_names, 0))
        for name, delta in deltas.items():
            total[name] += delta
    add, create, _ = _adding(table, key_names, delta_names)
    updates = [{**{f"key_{name}": value for name, value in key},
                **{f"delta_{name}": delta for name, delta in deltas.items()},
                # the rows are locked and checked above: the ceiling cannot be reached here
                **{f"ceiling_{name}": _largest(table, name) for name in delta_names}}
               for key, deltas in summed.items() if key in existing]
    creations = [{**dict(key), **deltas} for key, deltas in summed.items()
                 if key not in existing]
    if updates:
        add.execute(conn, updates)
    if creations:
        create.execute(conn, creations)


def _overflow(table: Table, key: Mapping[str, Any], deltas: Mapping[str, int]) -> SumOverflow:
    return SumOverflow(
        f"{table.name} {dict(key)}: adding {dict(deltas)} would pass {MAX_ACCUMULATED}")


@cache
def _largest(table: Table, column: str) -> int:
    """The largest value ``column`` holds on every database (a count is a 32-bit INTEGER)."""
    kind = table.c[column].type
    return MAX_ACCUMULATED if isinstance(kind, BigInteger) else 2**31 - 1


@cache
def _adding(
    table: Table, keys: tuple[str, ...], deltas: tuple[str, ...]
) -> tuple[DriverWrite, DriverWrite, Select[Any]]:
    """The update, the insert and the existence check of :func:`add_to`, built once per table
    and shape."""
    at_key = [table.c[name] == bindparam(f"key_{name}") for name in keys]
    below = [table.c[name] <= bindparam(f"ceiling_{name}") for name in deltas]
    add = update(table).where(*at_key, *below).values(
        {table.c[name]: table.c[name] + bindparam(f"delta_{name}") for name in deltas})
    exists = select(table.c[keys[0]]).where(*at_key)
    return DriverWrite(add), DriverWrite(insert(table)), exists

"""Statements that run per order or per event, executed on the driver's cursor.

Building a statement once (module level, ``bindparam``) saves its construction, but Core's
execution path still costs several times what the driver takes for the same statement, and an
order and its saga run about fifteen of them (the figures are in ``docs/architecture.md``,
Decisions). A :class:`DriverWrite` compiles its statement once per dialect and set of parameter
names, with the bind processors Core would apply (SQLite's datetimes), so rows come out exactly
as Core writes them; driver errors are raised as SQLAlchemy's (``IntegrityError`` and the rest), so
callers catch what they always caught.

A :class:`DriverWrite` is for ``INSERT``/``UPDATE``/``DELETE`` that return nothing the caller
reads (a row count at most) and have no expanding (``IN``) parameters. A :class:`DriverRead` is
the same for a ``SELECT``: compiled once per dialect and shape of its parameters (the length of
each ``IN`` list), its rows processed by Core's own result processors (SQLite's datetimes and
booleans) and handed out as named tuples.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Delete, Insert, Update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.schema import ColumnDefault

Params = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    processors: Mapping[str, Callable[[Any], Any]]
    fixed: Mapping[str, Any]  # values written into the statement, e.g. .values(state="done")

    def values(self, params: Params) -> list[Any]:
        processors, fixed = self.processors, self.fixed
        values = []
        for name in self.names:
            value = params[name] if name in params else fixed[name]
            values.append(processors[name](value) if name in processors else value)
        return values


class DriverWrite:
    """A write statement run on the driver's cursor (see the module)."""

    def __init__(self, statement: UpdateBase) -> None:
        _refuse_what_core_would_do_differently(statement)
        self._statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def execute(self, conn: Connection, params: Params | Sequence[Params]) -> int:
        """Run once with ``params``, or once per mapping of a sequence (all with the same
        names); returns the row count the driver reports."""
        many = not isinstance(params, Mapping)
        rows: Sequence[Params] = [params] if isinstance(params, Mapping) else params
        if not rows:
            return 0
        compiled = self._compile(conn, rows[0])
        with _driver_cursor(conn, compiled.sql) as cursor:
            if many:
                cursor.executemany(compiled.sql, [compiled.values(row) for row in rows])
            else:
                cursor.execute(compiled.sql, compiled.values(rows[0]))
            return int(cursor.rowcount)

    def _compile(self, conn: Connection, params: Params) -> _Compiled:
        key = (conn.dialect.name, tuple(params))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._build(conn, params)
        return compiled

    def _build(self, conn: Connection, params: Params) -> _Compiled:
        done = self._statement.compile(dialect=conn.dialect, column_keys=list(params))
        expanded = done.construct_expanded_state(dict(params))
        names = tuple(expanded.positiontup or ())
        if not names and expanded.parameters:
            raise ValueError("DriverWrite needs a dialect with positional parameters")
        fixed = {name: value for name, value in expanded.parameters.items()
                 if name not in params}
        # The columns left out whose default (insert) or onupdate (update) Core evaluates in
        # Python before the write; their parameter is named by the column's key.
        prefetch = [(column, column.default) for column in done.insert_prefetch] + [
            (column, column.onupdate) for column in done.update_prefetch]
        for column, default in prefetch:
            if not (isinstance(default, ColumnDefault) and default.is_scalar) \
                    or column.key not in fixed:
                raise ValueError(
                    f"DriverWrite cannot honour the default of {_name(column)} on "
                    f"{conn.dialect.name} as Core does (it runs it before the write): "
                    "pass the column's value, or write with Core")
            fixed[column.key] = default.arg
        return _Compiled(expanded.statement, names, bind_processors(done, conn.dialect), fixed)


def _refuse_what_core_would_do_differently(statement: UpdateBase) -> None:
    """Raise for a statement whose effect on the driver would differ from Core's (see the
    module): RETURNING, or a Python callable default (insert) or onupdate (update)."""
    if statement.exported_columns:
        raise ValueError("DriverWrite runs no statement with RETURNING: its rows are not read")
    if isinstance(statement, Delete):
        return
    table = statement.table
    for column in getattr(table, "columns", ()):
        default = column.default if isinstance(statement, Insert) else (
            column.onupdate if isinstance(statement, Update) else None)
        if default is not None and (default.is_callable or default.is_sentinel):
            which = "default" if isinstance(statement, Insert) else "onupdate"
            raise ValueError(
                f"DriverWrite cannot honour the {which} of {_name(column)} (a Python callable "
                "Core calls per row with its execution context): pass the column's value "
                "always and drop the callable, or write this table with Core")


def bind_processors(compiled: SQLCompiler, dialect: Dialect) -> dict[str, Callable[[Any], Any]]:
    """What Core applies to each parameter value of ``compiled`` before the driver gets it
    (SQLite's datetimes): the processor of each bound parameter's type for the dialect, from
    public API (``ExpandedState.processors`` only has those of ``IN`` lists' expansions)."""
    processors: dict[str, Callable[[Any], Any]] = {}
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    return processors


def _name(column: Column[Any]) -> str:
    return f"{column.table.name}.{column.name}" if column.table is not None else column.name


@dataclass(frozen=True, slots=True)
class _Query:
    sql: str
    sources: tuple[tuple[str, int], ...]  # per placeholder: (parameter, index in its list or -1)
    fixed: Mapping[str, Any]  # values written into the statement
    processors: Mapping[str, Callable[[Any], Any]]
    results: tuple[Callable[[Any], Any] | None, ...]
    row: Callable[..., tuple[Any, ...]]

    def values(self, params: Params) -> list[Any]:
        values = []
        for name, index in self.sources:
            value = (params[name] if index < 0 else params[name][index]) if name in params \
                else self.fixed[name]
            process = self.processors.get(name)
            values.append(value if process is None else process(value))
        return values

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[Any]:
        """The driver's rows as Core gives them: its result processors applied, as named
        tuples."""
        results, row = self.results, self.row
        if not any(results):
            return [row(*values) for values in raw]
        return [row(*(value if process is None else process(value)
                      for process, value in zip(results, values, strict=True)))
                for values in raw]


@dataclass(frozen=True, slots=True)
class BoundRead:
    """A :class:`DriverRead` ready for a driver: its SQL, its positional values, and what turns
    the driver's rows into the statement's rows."""

    sql: str
    values: list[Any]
    rows: Callable[[Sequence[Sequence[Any]]], list[Any]]


class DriverRead:
    """A ``SELECT`` run on the driver's cursor (see the module)."""

    def __init__(self, statement: Select[Any]) -> None:
        self._statement = statement
        self._compiled: dict[tuple[object, ...], _Query] = {}

    @property
    def statement(self) -> Select[Any]:
        """The ``SELECT`` as Core runs it."""
        return self._statement

    def all(self, conn: Connection, params: Params) -> list[Any]:
        """Every row, as named tuples with the statement's column keys."""
        query = self._compile(conn.dialect, params)
        with _driver_cursor(conn, query.sql) as cursor:
            cursor.execute(query.sql, query.values(params))
            return query.rows(cursor.fetchall())

    def bound(self, dialect: Dialect, params: Params) -> BoundRead:
        """The statement as ``dialect``'s driver takes it, with ``params`` bound, for a caller
        that runs it on a driver connection of its own (:meth:`Database.fetch
        <archway.kernel.db.Database.fetch>`) and hands the driver's rows to
        :attr:`BoundRead.rows`, which gives what :meth:`all` returns."""
        query = self._compile(dialect, params)
        return BoundRead(query.sql, query.values(params), query.rows)

    def first(self, conn: Connection, params: Params) -> Any:
        """The first row, or ``None``."""
        rows = self.all(conn, params)
        return rows[0] if rows else None

    def scalar(self, conn: Connection, params: Params) -> Any:
        """The first column of the first row, or ``None`` when there is no row."""
        first = self.first(conn, params)
        return first[0] if first is not None else None

    def _compile(self, dialect: Dialect, params: Params) -> _Query:
        shape = tuple((name, len(value) if isinstance(value, list | tuple) else -1)
                      for name, value in params.items())
        key = (dialect.name, shape)
        query = self._compiled.get(key)
        if query is None:
            query = self._compiled[key] = self._build(dialect, params)
        return query

    def _build(self, dialect: Dialect, params: Params) -> _Query:
        compiled = self._statement.compile(dialect=dialect)
        expanded = compiled.construct_expanded_state(dict(params))
        names = tuple(expanded.positiontup or ())
        if not names and expanded.parameters:
            raise ValueError("DriverRead needs a dialect with positional parameters")
        position = {name: (name, -1) for name in names}
        for base, parts in (expanded.parameter_expansion or {}).items():
            position.update({part: (base, index) for index, part in enumerate(parts)})
        processors = {}
        known = {**bind_processors(compiled, dialect), **(expanded.processors or {})}
        for name in names:
            base = position[name][0]
            process = known.get(name) or known.get(base)
            if process is not None:
                processors[base] = process
        keys = list(self._statement.selected_columns.keys())  # as Core's rows name them
        # fields known only at run time:
        row = namedtuple("Row", keys, rename=True)  # type: ignore[misc]
        return _Query(
            sql=expanded.statement,
            sources=tuple(position[name] for name in names),
            fixed={name: value for name, value in expanded.parameters.items()
                   if name not in params and position.get(name, (name, -1))[0] not in params},
            processors=processors,
            # Core's result processors; coltype (the driver's type code, which Core passes
            # too) is None: no processor of a type Archway selects reads it.
            results=tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in self._statement.selected_columns),
            row=row,
        )


@contextmanager
def _driver_cursor(conn: Connection, sql: str) -> Iterator[Any]:
    """A cursor of the connection's driver, closed after use; the driver's errors come out
    as SQLAlchemy's (``IntegrityError`` and the rest), so callers catch what they always did."""
    # a live Connection always has one:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error) from exc
    finally:
        cursor.close()

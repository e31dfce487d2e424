"""Hot statements as one libpq call: `PQexecPrepared` on the connection's own `PGconn`.

A psycopg cursor's `execute` is Python from end to end: a cursor object, the query converted,
adapters per parameter, a generator that sends, polls and fetches, releasing and taking back the
interpreter lock at each step, and loaders per row. For the one-statement reads of the
SQL-rendered documents that was a fifth of an order read's CPU in-process (0.385 -> 0.314 ms,
docs/performance.md, decision 28), and each lock release is a hand-over to another thread of a
busy server. Here the statement is prepared once per connection under its own name, the
parameters go as text with the type OIDs psycopg's dumpers would send (str and None as unknown,
typed by where they stand) and the call sends, waits and reads in C, releasing the lock once.

Used outside transactions only (`backend.database.fetchall`), by the documents' reads and the
order's two statements. Parameters of None, bool, int, str, Decimal, UUID, aware datetimes and
lists of ints, `%s` or `%(name)s` placeholders; result columns of text, integers, booleans and
bigint arrays. Anything else is a TypeError (a programming error, caught by their tests).
Statements still count in Prometheus, and errors are psycopg's, so Django's
`wrap_database_errors` makes them Django's as for any cursor.
"""

from __future__ import annotations

import itertools
import re
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from time import perf_counter
from typing import Any

import psycopg
from psycopg import errors, pq

from backend.observability.db import StatementMeter

Row = tuple[Any, ...]
# SQLSTATE invalid_sql_statement_name: the statement is not prepared on this server session.
_UNDEFINED_STATEMENT = b"26000"

_numbers = itertools.count()
_NAMED = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Statement:
    name: bytes
    text: bytes
    keys: tuple[str, ...] | None  # the `%(name)s` parameters in `$n` order; None for `%s`


# One prepared statement per text and parameter types, as psycopg keys its own: a parameter that
# is None in one call (unknown type) and a UUID in the next makes two statements.
_statements: dict[tuple[str, bool, tuple[int, ...]], Statement] = {}
# The names each connection has prepared; a new connection (a reconnect) starts empty.
_prepared: weakref.WeakKeyDictionary[psycopg.Connection[Any], set[bytes]] = (
    weakref.WeakKeyDictionary()
)
_LOADERS: dict[int, Callable[[bytes], Any]] = {
    16: lambda value: value == b"t",  # bool
    20: int,  # int8
    21: int,  # int2
    23: int,  # int4
    25: bytes.decode,  # text
    1043: bytes.decode,  # varchar
    1016: lambda value: [int(n) for n in value[1:-1].split(b",") if n],  # int8[]
}
# Parameter type OIDs, as psycopg's dumpers send them (str and None as unknown: PostgreSQL takes
# the type from where the parameter stands, e.g. the column an INSERT writes it to).
_UNKNOWN, _BOOL, _INT8, _NUMERIC, _TIMESTAMPTZ, _UUID, _INT8_ARRAY = (
    0,
    16,
    20,
    1700,
    1184,
    2950,
    1016,
)


@cache
def _parse(sql: str, named: bool) -> tuple[str, tuple[str, ...] | None]:
    """The `$n` text of `%s` (or, `named`, `%(name)s`) placeholders, and the names in `$n` order."""
    if named:
        order: dict[str, int] = {}
        text = _NAMED.sub(lambda m: f"${order.setdefault(m[1], len(order) + 1)}", sql)
        rest, keys = _NAMED.sub("", sql), tuple(order)
    else:
        first, *parts = sql.split("%s")
        text = first + "".join(f"${n}{part}" for n, part in enumerate(parts, 1))
        rest, keys = sql.replace("%s", ""), None
    if "%" in rest:
        raise ValueError("only %s or %(name)s placeholders can be prepared here")
    return text, keys


def statement(sql: str, named: bool = False, types: tuple[int, ...] = ()) -> Statement:
    """The statement for this text and parameter types (one name each)."""
    found = _statements.get((sql, named, types))
    if found is None:
        text, keys = _parse(sql, named)
        # next() on a count is atomic under the interpreter lock: threads never share a name.
        made = Statement(f"duka_{next(_numbers)}".encode(), text.encode(), keys)
        found = _statements.setdefault((sql, named, types), made)
    return found


def _dump(value: Any) -> tuple[bytes | None, int]:
    """A parameter's text and type OID."""
    if value is None:
        return None, _UNKNOWN
    if isinstance(value, bool):
        return (b"t" if value else b"f"), _BOOL
    if isinstance(value, str):  # also str enums (TextChoices): their text is the value
        return value.encode(), _UNKNOWN
    if isinstance(value, int):
        return str(int(value)).encode(), _INT8
    if isinstance(value, Decimal):
        return str(value).encode(), _NUMERIC
    if isinstance(value, uuid.UUID):
        return str(value).encode(), _UUID
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat().encode(), _TIMESTAMPTZ
    if isinstance(value, list | tuple) and all(type(item) is int for item in value):
        return ("{" + ",".join(map(str, value)) + "}").encode(), _INT8_ARRAY
    raise TypeError(f"no text form for a {type(value).__name__} parameter here")


def _raise_for(conn: psycopg.Connection[Any], result: pq.abc.PGresult) -> None:
    if conn.pgconn.status == pq.ConnStatus.BAD:
        # Lost connection: what psycopg's own cursor raises, so Django replaces the connection.
        message = conn.pgconn.get_error_message(conn.info.encoding) or "connection lost"
        raise psycopg.OperationalError(message)
    raise errors.error_from_result(result, encoding=conn.info.encoding)


def fetch(
    conn: psycopg.Connection[Any],
    meter: StatementMeter,
    sql: str,
    params: Sequence[Any] | Mapping[str, Any],
) -> list[Row]:
    """The rows of one statement run as a prepared statement of this connection."""
    named = isinstance(params, Mapping)
    if named:
        keys = _parse(sql, True)[1] or ()
        dumped = [_dump(params[key]) for key in keys]  # type: ignore[call-overload]
    else:
        dumped = [_dump(value) for value in params]
    types = tuple(oid for _, oid in dumped)
    found = statement(sql, named, types)
    values = [text for text, _ in dumped]
    meter.executed.inc()
    started = perf_counter()
    try:
        result = _execute(conn, found.name, found.text, values, types)
    except BaseException as exc:
        meter.error(exc)
        raise
    finally:
        meter.duration.observe(max(perf_counter() - started, 0.0))
    try:
        loaders = [_LOADERS[result.ftype(column)] for column in range(result.nfields)]
    except KeyError as exc:
        raise TypeError(f"no loader for a column of type oid {exc.args[0]}") from None
    get = result.get_value
    return [
        tuple(
            None if (value := get(row, column)) is None else load(value)
            for column, load in enumerate(loaders)
        )
        for row in range(result.ntuples)
    ]


def _execute(
    conn: psycopg.Connection[Any],
    name: bytes,
    text: bytes,
    values: list[bytes | None],
    types: tuple[int, ...],
) -> pq.abc.PGresult:
    pgconn = conn.pgconn
    prepared = _prepared.get(conn)
    if prepared is None:
        prepared = _prepared.setdefault(conn, set())
    for attempt in (1, 2):
        if name not in prepared:
            result = pgconn.prepare(name, text, types)
            if result.status != pq.ExecStatus.COMMAND_OK:
                _raise_for(conn, result)
            prepared.add(name)
        result = pgconn.exec_prepared(name, values)
        if result.status in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
            return result
        if result.error_field(pq.DiagnosticField.SQLSTATE) == _UNDEFINED_STATEMENT:
            # The server forgot it: psycopg runs DEALLOCATE ALL after a rollback on a connection
            # where it had prepared statements. Prepared again and run again (the caller runs
            # this outside transactions only, so the error aborted nothing).
            prepared.discard(name)
            if attempt == 1:
                continue
        _raise_for(conn, result)
    raise AssertionError("unreachable")  # pragma: no cover

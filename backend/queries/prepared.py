"""Hot reads as one libpq call: `PQexecPrepared` on the connection's own `PGconn`.

A psycopg cursor's `execute` is Python from end to end: a cursor object, the query converted,
adapters per parameter, a generator that sends, polls and fetches, releasing and taking back the
interpreter lock at each step, and loaders per row. For the one-statement reads of the
SQL-rendered documents that was a fifth of an order read's CPU in-process (0.385 -> 0.314 ms,
docs/performance.md, decision 28), and each lock release is a hand-over to another thread of a
busy server. Here the statement is prepared once per connection under its own name, the
parameters go as text (PostgreSQL infers their types from the statement, as for any `$n`) and
the call sends, waits and reads in C, releasing the lock once.

Used outside transactions only (`sql._direct`). Only what `documents` needs: parameters of None, bool, int, str, Decimal and aware datetimes;
result columns of text, integers and booleans. Anything else is a TypeError (a programming error,
caught by the document tests). Statements still count in Prometheus, and errors are psycopg's,
so Django's `wrap_database_errors` makes them Django's as for any cursor.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from time import perf_counter
from typing import Any

import psycopg
from psycopg import errors, pq

from backend.observability.db import StatementMeter

Row = tuple[Any, ...]
# SQLSTATE invalid_sql_statement_name: the statement is not prepared on this server session.
_UNDEFINED_STATEMENT = b"26000"

_numbers = itertools.count()
_statements: dict[str, tuple[bytes, bytes]] = {}
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
}


def statement(sql: str) -> tuple[bytes, bytes]:
    """The name and `$n` text of a `%s`-placeholder statement (one per distinct text)."""
    found = _statements.get(sql)
    if found is None:
        if "%" in sql.replace("%s", ""):
            raise ValueError("only %s placeholders can be prepared here")
        first, *rest = sql.split("%s")
        text = first + "".join(f"${n}{part}" for n, part in enumerate(rest, 1))
        # next() on a count is atomic under the interpreter lock: threads never share a name.
        found = _statements.setdefault(sql, (f"duka_{next(_numbers)}".encode(), text.encode()))
    return found


def _text(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, int | str | Decimal):
        return str(value).encode()
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.isoformat().encode()
    raise TypeError(f"no text form for a {type(value).__name__} parameter here")


def _raise_for(conn: psycopg.Connection[Any], result: pq.abc.PGresult) -> None:
    if conn.pgconn.status == pq.ConnStatus.BAD:
        # Lost connection: what psycopg's own cursor raises, so Django replaces the connection.
        message = conn.pgconn.get_error_message(conn.info.encoding) or "connection lost"
        raise psycopg.OperationalError(message)
    raise errors.error_from_result(result, encoding=conn.info.encoding)


def fetch(
    conn: psycopg.Connection[Any], meter: StatementMeter, sql: str, params: Sequence[Any]
) -> list[Row]:
    """The rows of one SELECT run as a prepared statement of this connection."""
    name, text = statement(sql)
    values = [_text(value) for value in params]
    meter.executed.inc()
    started = perf_counter()
    try:
        result = _execute(conn, name, text, values)
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
    conn: psycopg.Connection[Any], name: bytes, text: bytes, values: list[bytes | None]
) -> pq.abc.PGresult:
    pgconn = conn.pgconn
    prepared = _prepared.get(conn)
    if prepared is None:
        prepared = _prepared.setdefault(conn, set())
    for attempt in (1, 2):
        if name not in prepared:
            result = pgconn.prepare(name, text)
            if result.status != pq.ExecStatus.COMMAND_OK:
                _raise_for(conn, result)
            prepared.add(name)
        result = pgconn.exec_prepared(name, values)
        if result.status == pq.ExecStatus.TUPLES_OK:
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

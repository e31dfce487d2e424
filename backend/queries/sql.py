"""Raw reads for the hot paths, portable between PostgreSQL and the quick start's SQLite.

psycopg returns aware datetimes and exact Decimals; sqlite3 returns naive datetimes and stores
money with NUMERIC affinity (1500.00 comes back as the int 1500, 1500.10 as a float), so SQLite
rows are converted per column from the view dataclass's field types.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from backend import database
from backend.replicas import routing

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
Row = tuple[Any, ...]


def _money(value: Any) -> Any:
    return (
        None
        if value is None
        else Decimal(repr(value) if isinstance(value, float) else str(value)).quantize(CENT)
    )


def _utc(value: Any) -> Any:
    return (
        value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value
    )


def _same(value: Any) -> Any:
    return value


def sqlite_converters(view: type) -> tuple[Callable[[Any], Any], ...]:
    """One converter per field of a view dataclass, by its declared type."""
    hints = typing.get_type_hints(view)
    converters: list[Callable[[Any], Any]] = []
    for field in dataclasses.fields(view):
        kinds = typing.get_args(hints[field.name]) or (hints[field.name],)
        converters.append(_money if Decimal in kinds else _utc if datetime in kinds else _same)
    return tuple(converters)


def fetch(
    sql: str,
    params: Sequence[Any],
    converters: Sequence[Callable[[Any], Any]],
    *,
    untyped: bool = False,
) -> list[Row]:
    """Run one SELECT; rows come back as the view dataclass's positional arguments.

    `untyped`: the SELECT returns only text, integers and booleans (the documents PostgreSQL
    renders), so no timestamp loader needs setting up and `database.fetchall` may run it.

    Reads from the replica when `backend.replicas.routing` says so; a replica that fails the
    query is marked down and the query runs on the primary instead.
    """
    alias = routing.read_alias()
    if alias != DEFAULT_DB_ALIAS:
        try:
            return _fetch(connections[alias], sql, params, converters, untyped)
        except (OperationalError, InterfaceError) as exc:
            logger.warning("read replica failed a query (%s); reading from the primary", exc)
            connections[alias].close()
            routing.monitor.mark_down()
    # The wrapper itself, not `django.db.connection`: every attribute read through that proxy is
    # a lookup in `connections` (an asgiref Local), and a read makes about ten of them.
    return _fetch(connections[DEFAULT_DB_ALIAS], sql, params, converters, untyped)


def _fetch(
    connection: BaseDatabaseWrapper,
    sql: str,
    params: Sequence[Any],
    converters: Sequence[Callable[[Any], Any]],
    untyped: bool,
) -> list[Row]:
    postgres = connection.vendor == "postgresql"
    if untyped and postgres:
        return database.fetchall(connection, sql, params)
    if not postgres:
        params = [
            connection.ops.adapt_datetimefield_value(p) if isinstance(p, datetime) else p
            for p in params
        ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if postgres:
        return rows
    return [
        tuple(convert(value) for convert, value in zip(converters, row, strict=True))
        for row in rows
    ]


class ViewReader:
    """`SELECT <the view dataclass's fields> FROM <its table>`, built once at import."""

    def __init__(self, model: type, view: type) -> None:
        columns = ", ".join(
            f'"{model._meta.get_field(f.name).column}"' for f in dataclasses.fields(view)
        )
        self.select = f'SELECT {columns} FROM "{model._meta.db_table}"'  # noqa: S608 - metadata
        self._converters = sqlite_converters(view)

    def rows(self, tail: str, params: Sequence[Any]) -> list[Row]:
        """Rows of `select + tail`, as the view dataclass's positional arguments."""
        return fetch(self.select + tail, params, self._converters)

"""The one way the read side runs SQL: on the replica when `backend.replicas.routing` says so,
else on the primary, through Django's cursor.

The hot reads' statements are written once at import from the models' metadata (compiling the
same ORM query on every request costs more than running it); request values are always
parameters, never part of the text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import (
    DEFAULT_DB_ALIAS,
    InterfaceError,
    NotSupportedError,
    OperationalError,
    connections,
)
from django.db.models import DateTimeField

from backend.errors import is_stale_plan
from backend.replicas import routing

logger = logging.getLogger(__name__)

Row = tuple[Any, ...]


def select(sql: str, params: Sequence[Any], *, primary_if_empty: bool = False) -> list[Row]:
    """The rows of one SELECT.

    A replica that fails the query is marked down and the query runs on the primary instead.
    With `primary_if_empty` (a read by id), no row on the replica is asked again on the
    primary: the row may be newer than the replica's replay, and a 404 must be the primary's.
    A statement that a migration outdated after this connection prepared it runs once more:
    psycopg forgot the failed statement, so the second run is planned afresh.
    """
    alias = routing.read_alias()
    if alias != DEFAULT_DB_ALIAS:
        try:
            rows = _select(alias, sql, params)
            if rows or not primary_if_empty:
                return rows
        except (OperationalError, InterfaceError) as exc:
            logger.warning("read replica failed a query (%s); reading from the primary", exc)
            connections[alias].close()
            routing.monitor.mark_down()
    return _select(DEFAULT_DB_ALIAS, sql, params)


def _select(alias: str, sql: str, params: Sequence[Any]) -> list[Row]:
    connection = connections[alias]
    with connection.cursor() as cursor:
        try:
            cursor.execute(sql, params)
        except NotSupportedError as exc:
            # Inside a transaction it is aborted: the command's own retry runs it again.
            if connection.in_atomic_block or not is_stale_plan(exc):
                raise
            cursor.execute(sql, params)
        return cursor.fetchall()


def columns(model: Any, names: Sequence[str]) -> str:
    """The select list of `model`'s fields called `names`, in that order.

    A time comes as its ISO 8601 text, which the resources parse: Django loads `timestamptz`
    through a pure-Python loader (Django ticket 36960) that cost more than the rest of a page."""
    select = []
    for name in names:
        column = model._meta.get_field(name).column
        if isinstance(model._meta.get_field(name), DateTimeField):
            select.append(f'to_json("{column}") #>> \'{{}}\' AS "{column}"')
        else:
            select.append(f'"{column}"')
    return ", ".join(select)

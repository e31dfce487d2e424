"""The one way the read side runs SQL: on the replica when `backend.replicas.routing` says so,
else on the primary, through Django's cursor.

The hot reads' statements are written once at import from the models' metadata (compiling the
same ORM query on every request costs more than running it); request values are always
parameters, never part of the text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, get_args, get_origin

from django.db import (
    DEFAULT_DB_ALIAS,
    InterfaceError,
    NotSupportedError,
    OperationalError,
    connections,
)
from django.db.models import Model
from pydantic import BaseModel

from backend.errors import is_stale_plan
from backend.queries.resources import MONEY, MONEY_PLACES
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


def document(model: type[Model], resource: type[BaseModel]) -> str:
    """SQL that renders a row of `model` as the JSON `resource` writes (`body()`), byte for byte.

    Each field of the resource becomes its key and the column of that name, in the resource's
    order, so a page is PostgreSQL's text sent as is: no value is loaded into Python objects,
    validated and serialised again for each read (the bulk of a page's cost when pydantic did it).
    `tests/api/test_resources.py` holds this equal to pydantic's output for every field."""
    parts = []
    for index, (name, field) in enumerate(resource.model_fields.items()):
        column = f'"{model._meta.get_field(name).column}"'
        key = ("{" if index == 0 else ",") + json.dumps(name) + ":"
        parts.append(_literal(key))
        parts.append(_json_value(field.annotation, field.metadata, column))
    parts.append("'}'")
    return " || ".join(parts)


def _literal(text: str) -> str:
    # `%` would read as a parameter placeholder in the statements these go into.
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def _json_value(annotation: Any, metadata: list[Any], column: str) -> str:
    """The SQL of one JSON value as pydantic writes it (compact, UTF-8, `\\u00XX` escapes)."""
    args = get_args(annotation)
    if type(None) in args:
        (inner,) = (arg for arg in args if arg is not type(None))
        return f"COALESCE({_json_value(inner, metadata, column)}, 'null')"
    if annotation is str or get_origin(annotation) is Literal:
        return f"to_json({column})::text"
    if annotation is int:
        return f"{column}::text"
    if annotation is Decimal and MONEY in metadata:
        return f"'\"' || round({column}, {MONEY_PLACES})::text || '\"'"
    if annotation is datetime:
        # Pydantic's UTC form: microseconds unless zero, then none; `Z` for UTC.
        utc = f"{column} AT TIME ZONE 'UTC'"
        text = f"""replace(to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US'), '.000000', '')"""
        return f"""'"' || {text} || 'Z"'"""
    raise TypeError(f"No SQL rendering for {annotation!r} ({column}): add one here.")

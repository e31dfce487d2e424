"""The hot reads' JSON bodies, rendered by PostgreSQL (issue 11).

A page of 50 customers spent most of its CPU in Python turning rows into text: psycopg parsing
150 timestamps through Django's Python-level tz loader, `Decimal`s, then `isoformat()` and the
JSON encoder. Here the SELECT writes each row's JSON text itself (the same bytes
`backend.api.rendering` gives from the view dataclasses) and aggregates the page into one
string, so Python receives one row of a few columns and passes the text through.

The text is what `json.dumps` writes with its defaults (`", "` and `": "`, `ensure_ascii`):
- strings go through `to_json(text)`, which escapes `"`, `\\` and control characters exactly as
  json.dumps does (`\\n`-style short forms, else `\\u00xx` in lower case) but leaves non-ASCII
  (and DEL) as they are; `_ascii` escapes those in Python, only when the text has any;
- money is the `numeric(p, 2)` column's text (`str(Decimal)` of the same value);
- timestamps are `rendering.timestamp()`'s text: UTC, milliseconds (truncated) only when the
  microseconds are not zero, `Z`.
`tests/integration/queries/test_documents.py` compares the bytes with the Python rendering over
edge values. PostgreSQL only: the quick start's SQLite keeps the Python path (`available()`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from django.db import connection

from backend.errors import NotFound
from backend.queries import customers, orders
from backend.queries.models import CustomerView, OrderView
from backend.queries.pagination import DEFAULT_LIMIT, encode_cursor
from backend.queries.sql import fetch

_NOT_JSON_ASCII = re.compile(r"[^\x00-\x7e]")


def available() -> bool:
    """True when the database renders the bodies (PostgreSQL); else use the Python rendering."""
    return connection.vendor == "postgresql"


def _ascii(text: str) -> str:
    """json.dumps' `ensure_ascii`: non-ASCII and DEL as `\\uXXXX` (surrogate pairs above BMP).

    Outside strings JSON text is ASCII, so escaping every such character of the whole document
    is the same as escaping it inside each string.
    """
    if text.isascii() and "\x7f" not in text:
        return text
    return _NOT_JSON_ASCII.sub(lambda match: encode_basestring_ascii(match.group())[1:-1], text)


# --- SQL expressions, written once at import ----------------------------------------------------


def _utc(column: str) -> str:
    return f"({column} AT TIME ZONE 'UTC')"


def _whole_second(column: str) -> str:
    return f"date_trunc('second', {_utc(column)}) = {_utc(column)}"


def _sql_json_time(column: str) -> str:
    """`rendering.timestamp()`: `2026-11-27T08:30:00Z`, `...08:30:00.123Z` (ms truncated)."""
    return (
        f"""to_char({_utc(column)}, 'YYYY-MM-DD"T"HH24:MI:SS')"""
        f" || CASE WHEN {_whole_second(column)} THEN '' ELSE to_char({_utc(column)}, '.MS') END"
        " || 'Z'"
    )


def _json_time(iso: str | None) -> str | None:
    """`rendering.timestamp()` from the isoformat text: `_iso_time`'s is always UTC, and
    25 characters long without a fraction (`2026-11-27T08:30:00+00:00`), 32 with one."""
    if iso is None:
        return None
    return (iso[:19] if len(iso) == 25 else iso[:23]) + "Z"


def _iso_time(column: str) -> str:
    """`datetime.isoformat()` of the UTC instant (`...08:30:00.123456+00:00`): cursors, ETags."""
    return (
        f"""to_char({_utc(column)}, 'YYYY-MM-DD"T"HH24:MI:SS')"""
        f" || CASE WHEN {_whole_second(column)} THEN '' ELSE to_char({_utc(column)}, '.US') END"
        " || '+00:00'"
    )


def _kinds(view: type) -> list[tuple[str, type, bool]]:
    """(field name, its type, nullable) of a view dataclass, in field order."""
    hints = typing.get_type_hints(view)
    result = []
    for field in dataclasses.fields(view):
        args = typing.get_args(hints[field.name])
        kind = next((a for a in args if a is not type(None)), hints[field.name])
        result.append((field.name, kind, type(None) in args))
    return result


def _column(model: type, name: str) -> str:
    return f'"{model._meta.get_field(name).column}"'  # type: ignore[attr-defined]


def _json_object(model: type, view: type) -> str:
    """SQL text of one row as `json.dumps(rendering.<view>(row))`; keys in the dataclass's order."""
    parts = []
    for n, (name, kind, nullable) in enumerate(_kinds(view)):
        column = _column(model, name)
        if kind is int:
            value = f"{column}::text"
        elif kind is str:
            value = f"to_json({column})::text"
        elif kind is Decimal:
            value = f"""'"' || {column}::text || '"'"""
        elif kind is datetime:
            value = f"""'"' || {_sql_json_time(column)} || '"'"""
        else:  # pragma: no cover - a new field type needs its rendering here
            raise TypeError(f"{view.__name__}.{name}: no SQL rendering for {kind}")
        if nullable:
            value = f"COALESCE({value}, 'null')"
        parts.append(f"'{'{' if n == 0 else ', '}\"{name}\": ' || {value}")
    return " || ".join(parts) + " || '}'"


def _canonical(model: type, view: type) -> str:
    """The columns as `backend.queries.etags` digests them: timestamps as isoformat, money as text."""
    columns = []
    for name, kind, _ in _kinds(view):
        column = _column(model, name)
        if kind is datetime:
            columns.append(_iso_time(column))
        elif kind is Decimal:
            columns.append(f"{column}::text")
        else:
            columns.append(column)
    return ", ".join(columns)


def _tag(view: type, fields: Sequence[Any]) -> str:
    # Exactly `backend.queries.etags.etag()` of the same row (its module is shared with the
    # commands' If-Match check, so it is not rewritten here; the tests compare the two).
    digest = hashlib.sha256(json.dumps([view.__name__, list(fields)]).encode()).hexdigest()
    return f'"{digest[:32]}"'


class _Documents:
    """The one-row and page SELECTs of a view, built once at import from the models' metadata
    (no request value is ever part of the text: filters come as `%s` parameters)."""

    def __init__(self, model: type, view: type, order_by: str, key: Sequence[str]) -> None:
        table = f'"{model._meta.db_table}"'  # type: ignore[attr-defined]
        row = _json_object(model, view)
        self.view = view
        # One row: its columns as etags digests them; the body is a dict of those (timestamps
        # re-cut from isoformat) for the C encoder: for one row that costs PostgreSQL less than
        # writing the text and Python no more.
        self.one = f'SELECT {_canonical(model, view)} FROM {table} WHERE "id" = %s'  # noqa: S608
        self.names = [name for name, _, _ in _kinds(view)]
        self.times = frozenset(name for name, kind, _ in _kinds(view) if kind is datetime)
        # The page: limit + 1 rows in the index's order, numbered by a window over that same
        # order (no extra sort); one aggregate row joins the first `limit` objects and says
        # whether there is a next page and the last row's sort key, as the Python path put it in
        # its cursors (timestamps as isoformat), so cursors from either path are the same.
        kinds = {name: kind for name, kind, _ in _kinds(view)}
        keys = [
            _iso_time(_column(model, name)) if kinds[name] is datetime else _column(model, name)
            for name in key
        ]
        self.key_width = len(keys)
        aggregates = ", ".join(f"max(page.k{n})" for n in range(len(keys)))
        key_columns = ", ".join(
            f"CASE WHEN row_number() OVER w = %s THEN {expression} END AS k{n}"
            for n, expression in enumerate(keys)
        )
        inner = f"SELECT {row} AS j, row_number() OVER w AS n, {key_columns} FROM {table}"  # noqa: S608
        items = "string_agg(page.j, ', ' ORDER BY page.n) FILTER (WHERE page.n <= %s)"
        self.page_head = f"SELECT {items}, count(*) > %s, {aggregates} FROM ({inner}"  # noqa: S608
        self.page_tail = f" WINDOW w AS (ORDER BY {order_by}) ORDER BY {order_by} LIMIT %s) AS page"

    def get(self, pk: int, missing: str) -> tuple[str, str]:
        rows = fetch(self.one, [pk], ())
        if not rows:
            raise NotFound(missing)
        fields = rows[0]
        body = {
            name: _json_time(value) if name in self.times else value
            for name, value in zip(self.names, fields, strict=True)
        }
        return json.dumps(body), _tag(self.view, fields)

    def page(self, where: str, params: Sequence[Any], limit: int) -> tuple[str, list[Any] | None]:
        """The items' JSON (comma-joined objects) and the next page's key, None on the last."""
        sql = self.page_head + where + self.page_tail
        [(items, more, *key)] = fetch(
            sql, [limit, limit, *[limit] * self.key_width, *params, limit + 1], ()
        )
        return _ascii(items or ""), (key if more else None)


# Sort orders and keys as in `orders.list_orders` and `customers.list_customers`.
_ORDERS = _Documents(OrderView, orders.OrderRead, '"time" DESC, "id" DESC', ["time", "id"])
_CUSTOMERS = _Documents(CustomerView, customers.CustomerRead, '"id"', ["id"])


def _page_body(items: str, next_cursor: str | None) -> str:
    # The cursor is URL-safe base64 and `:`, so json.dumps has nothing to escape in it.
    return '{"items": [' + items + '], "next_cursor": ' + json.dumps(next_cursor) + "}"


def order(order_id: int) -> tuple[str, str]:
    """`GET orders/{id}/`: the JSON body and its strong ETag."""
    return _ORDERS.get(order_id, f"Order {order_id} does not exist.")


def customer(customer_id: int) -> tuple[str, str]:
    """`GET customers/{id}/`: the JSON body and its strong ETag."""
    return _CUSTOMERS.get(customer_id, f"Customer {customer_id} does not exist.")


def order_page(
    *,
    customer_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sms_status: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """`GET orders/`: the body of `orders.list_orders()`'s page, same filters and cursors."""
    where, params, filters = orders.page_filter(
        customer_id=customer_id, since=since, until=until, sms_status=sms_status, cursor=cursor
    )
    items, key = _ORDERS.page(where, params, limit)
    return _page_body(items, None if key is None else encode_cursor("orders", filters, key))


def customer_page(
    *,
    code: str | None = None,
    search: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """`GET customers/`: the body of `customers.list_customers()`'s page."""
    where, params, filters = customers.page_filter(code=code, search=search, cursor=cursor)
    items, key = _CUSTOMERS.page(where, params, limit)
    return _page_body(items, None if key is None else encode_cursor("customers", filters, key))

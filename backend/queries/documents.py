"""The API's JSON bodies as PostgreSQL stores them (issue 11, docs/performance.md decision 27).

Each projection row keeps its JSON text in a generated `document` column, computed by the
functions `schema_sql` writes whenever the row is written: `GET orders/{id}/` and
`GET customers/{id}/` select one, a page joins 50 in one aggregate row, and Python passes the text
through (no timestamp loaders, `Decimal`s, dicts or JSON encoder per read).

The text is what `json.dumps` writes with its defaults (`", "` and `": "`, `ensure_ascii`):
- strings go through `to_json(text)`, which escapes `"`, `\\` and control characters exactly as
  json.dumps does (`\\n`-style short forms, else `\\u00xx` in lower case) but leaves non-ASCII
  (and DEL) as they are; `_ascii` escapes those in Python, only when the text has any;
- money is the `numeric(p, 2)` column's text (`str(Decimal)` of the same value);
- timestamps are `rendering.timestamp()`'s text: UTC, milliseconds (truncated) only when the
  microseconds are not zero, `Z`.
`tests/integration/queries/test_documents.py` compares the bytes with the Python rendering
(`representations`) over edge values, which is also what a write's `If-Match` digests. PostgreSQL
only: the quick start's SQLite keeps the Python path (`available()`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from django.db import connection

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


# --- SQL -----------------------------------------------------------------------------------------
#
# Each projection row stores its document in a generated column, `document`, which PostgreSQL
# computes whenever the row is written (the order placed, its SMS status, a customer's rename fanned
# out to their orders, every order a customer places): a read joins stored texts and renders
# nothing (docs/performance.md, decision 27). The functions the columns call are written below from
# the view dataclasses; migrations hold their text as it was when applied, and
# `tests/integration/queries/test_documents.py` fails when this rendering and the newest migration's
# part: a new field needs a migration that replaces the function and the column.
#
# Timestamps leave PostgreSQL as `to_json(t AT TIME ZONE 'UTC')`: `"2026-11-27T08:30:00.63"`, the
# UTC wall time with the fraction's trailing zeros trimmed (none when it is zero), whatever the
# session's DateStyle. Both formats the API needs are cut from that text; it costs PostgreSQL half
# of the equivalent to_char() calls. Text positions (1-based, SQL): 1 is the quote, 2-20 the
# seconds, 21 on `.f...` then a quote. That text depends on nothing but the value, which is what
# lets the functions say IMMUTABLE (a generated column's expression must), although `to_json` is
# declared STABLE for the types whose text does depend on settings.

JSON_TIME_FUNCTION = "duka_json_time"
_SQL_TYPES = {int: "bigint", str: "text", Decimal: "numeric", datetime: "timestamptz"}


def _sql_utc_json(value: str) -> str:
    return f"to_json({value} AT TIME ZONE 'UTC')::text"


def _sql_fraction(text: str, width: int) -> str:
    """`.` and `width - 1` digits of the fraction (zero-padded, truncated), or '' without one."""
    return (
        f"CASE WHEN length({text}) = 21 THEN ''"
        f" ELSE rpad(substr({text}, 21, length({text}) - 21), {width}, '0') END"
    )


def _sql_json_time(text: str) -> str:
    """`rendering.timestamp()`, quoted: `"2026-11-27T08:30:00Z"`, `"...08:30:00.630Z"`.

    With a fraction, the text without its closing quote is padded with zeros or cut to 24
    characters (`rpad` does both): `.` and three digits, truncated. Fewer calls than cutting the
    fraction out and padding it (decision 24)."""
    return (
        f"CASE WHEN length({text}) = 21 THEN left({text}, 20)"
        f" ELSE rpad(left({text}, -1), 24, '0') END || 'Z\"'"
    )


def _sql_iso_time(text: str) -> str:
    """`datetime.isoformat()` of the UTC instant: `2026-11-27T08:30:00.630000+00:00`."""
    return f"substr({text}, 2, 19) || {_sql_fraction(text, 7)} || '+00:00'"


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


def _json_object(view: type) -> str:
    """SQL text of `json.dumps(rendering.<view>(...))` over the function's parameters `p_<field>`.

    One `format()` call rather than a chain of `||`: each `||` is a function call and a new text,
    20 of them per row, and rows took a fifth less of PostgreSQL's time this way (decision 23).
    Unquoted, non-nullable values go in as they are (`%s` renders a number's or json's text).
    """
    template = []
    values = []
    for n, (name, kind, nullable) in enumerate(_kinds(view)):
        if not name.isidentifier():  # pragma: no cover - nothing may need escaping in the template
            raise ValueError(f"{view.__name__}.{name}: not an identifier")
        param = f"p_{name}"
        if kind is int:
            value = param
        elif kind is str:
            value = f"to_json({param})"
        elif kind is Decimal:
            value = f"""'"' || {param}::text || '"'"""
        elif kind is datetime:
            value = f"{JSON_TIME_FUNCTION}({_sql_utc_json(param)})"
        else:  # pragma: no cover - a new field type needs its rendering here
            raise TypeError(f"{view.__name__}.{name}: no SQL rendering for {kind}")
        if nullable:  # format's %s renders NULL as ''
            value = f"COALESCE(({value})::text, 'null')"
        template.append(f'{"{" if n == 0 else ", "}"{name}": %s')
        values.append(value)
    return f"format('{''.join(template)}}}', {', '.join(values)})"


def schema_sql(model: type, view: type) -> list[str]:
    """The statements that give `model`'s table its `document` column, rendered from `view`.

    What the migration that adds (or changes) the column runs, word for word."""
    table = model._meta.db_table  # type: ignore[attr-defined]
    function = f"{table}_document"
    params = ", ".join(f"p_{name} {_SQL_TYPES[kind]}" for name, kind, _ in _kinds(view))
    arguments = ", ".join(_column(model, name) for name, _, _ in _kinds(view))
    return [
        f"CREATE OR REPLACE FUNCTION {function}({params}) RETURNS text"
        f" LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN {_json_object(view)}",
        f'ALTER TABLE "{table}" ADD COLUMN "document" text'
        f" GENERATED ALWAYS AS ({function}({arguments})) STORED",
    ]


def json_time_sql() -> str:
    """The helper every document function calls for a timestamp (NULL stays NULL)."""
    return (
        f"CREATE OR REPLACE FUNCTION {JSON_TIME_FUNCTION}(t text) RETURNS text"
        f" LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN {_sql_json_time('t')}"
    )


class _Documents:
    """The one-row and page SELECTs of a projection, built once at import from the models'
    metadata (no request value is ever part of the text: filters come as `%s` parameters)."""

    def __init__(self, model: type, view: type, order_by: str, key: Sequence[str]) -> None:
        table = f'"{model._meta.db_table}"'  # type: ignore[attr-defined]
        kinds = {name: kind for name, kind, _ in _kinds(view)}
        # A page: limit + 1 rows in the index's order, numbered by a window over that order (no
        # extra sort). One aggregate row joins the first `limit` documents and says whether there
        # is a next page and the last row's sort key, as the Python path put it in its cursors
        # (timestamps as isoformat, worked out for that one row only: FILTER comes first).
        last_key = [
            _sql_iso_time(_sql_utc_json(f'page."k_{name}"'))
            if kinds[name] is datetime
            else f'page."k_{name}"'
            for name in key
        ]
        keys = ", ".join(f"max({value}) FILTER (WHERE page.n = %s)" for value in last_key)
        self.key_width = len(key)
        items = "string_agg(page.document, ', ' ORDER BY page.n) FILTER (WHERE page.n <= %s)"
        key_columns = ", ".join(f'{_column(model, name)} AS "k_{name}"' for name in key)
        inner = f'SELECT "document", {key_columns}, row_number() OVER w AS n FROM {table}'  # noqa: S608
        self.page_head = f"SELECT {items}, count(*) > %s, {keys} FROM ({inner}"  # noqa: S608
        # The LIMIT is written into the text, not a parameter: with `LIMIT $n` the generic plan is
        # costed for a tenth of the table, so PostgreSQL kept planning every execution afresh
        # (0.05 ms a page at 10k orders). A limit is an int of 1-200: at most 200 statements.
        self.page_tail = f" WINDOW w AS (ORDER BY {order_by}) ORDER BY {order_by} LIMIT "
        self.one = f'SELECT "document" FROM {table} WHERE "id" = %s'  # noqa: S608

    def get(self, row_id: int) -> str | None:
        """The JSON text of the row with this id, None when there is none."""
        rows = fetch(self.one, [row_id], (), untyped=True)
        return _ascii(rows[0][0]) if rows else None

    def page(self, where: str, params: Sequence[Any], limit: int) -> tuple[str, list[Any] | None]:
        """The items' JSON (comma-joined objects) and the next page's key, None on the last."""
        sql = f"{self.page_head}{where}{self.page_tail}{int(limit) + 1}) AS page"
        [(items, more, *key)] = fetch(
            sql, [limit, limit, *[limit] * self.key_width, *params], (), untyped=True
        )
        return _ascii(items or ""), (key if more else None)


# Sort orders and keys as in `orders.list_orders` and `customers.list_customers`.
_ORDERS = _Documents(OrderView, orders.OrderRead, '"time" DESC, "id" DESC', ["time", "id"])
_CUSTOMERS = _Documents(CustomerView, customers.CustomerRead, '"id"', ["id"])


def _page_body(items: str, next_cursor: str | None) -> str:
    # The cursor is URL-safe base64 and `:`, so json.dumps has nothing to escape in it.
    return '{"items": [' + items + '], "next_cursor": ' + json.dumps(next_cursor) + "}"


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


def order(order_id: int) -> str:
    """`GET orders/{id}/`: the body `rendering.order()` gives for `orders.get_order()`."""
    body = _ORDERS.get(order_id)
    if body is None:
        raise orders.not_found(order_id)
    return body


def customer(customer_id: int) -> str:
    """`GET customers/{id}/`: the body `rendering.customer()` gives for `get_customer()`."""
    body = _CUSTOMERS.get(customer_id)
    if body is None:
        raise customers.not_found(customer_id)
    return body


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

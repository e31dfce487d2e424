"""Order queries, served from the `order_view` projection, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.utils.dateparse import parse_datetime

from backend.errors import BadRequest, NotFound
from backend.queries.models import OrderView
from backend.queries.pagination import DEFAULT_LIMIT, Page, decode_cursor, encode_cursor
from backend.queries.sql import ViewReader


@dataclass(frozen=True, slots=True)
class OrderRead:
    id: int
    customer_id: int
    customer_code: str
    customer_name: str
    item: str
    amount: Decimal
    time: datetime
    sms_status: str
    sms_error: str | None


# The SQL of the hot reads is written once, at import: compiling the same ORM query on every
# request cost more CPU than running it (docs/performance.md).
_READER = ViewReader(OrderView, OrderRead)
_NEWEST_FIRST = ' ORDER BY "time" DESC, "id" DESC LIMIT %s'


def not_found(order_id: int) -> NotFound:
    return NotFound(f"Order {order_id} does not exist.")


def get_order(order_id: int) -> OrderRead:
    rows = _READER.rows(' WHERE "id" = %s', [order_id])
    if not rows:
        raise not_found(order_id)
    return OrderRead(*rows[0])


def _cursor_key(key: list[object]) -> tuple[datetime, int]:
    if len(key) == 2 and isinstance(key[0], str) and isinstance(key[1], int):
        time = parse_datetime(key[0])
        if time is not None:
            return time, key[1]
    raise BadRequest("The cursor is malformed.")


def page_filter(
    *,
    customer_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sms_status: str | None = None,
    cursor: str | None = None,
) -> tuple[str, list[object], dict[str, object]]:
    """The WHERE clause (may be empty) and its parameters of a page of orders, and the filters
    its cursors are bound to. Shared with `backend.queries.documents` (the SQL-rendered page)."""
    filters: dict[str, object] = {"customer_id": customer_id, "since": since, "until": until}
    if sms_status is not None:  # only then: cursors issued before the filter existed stay valid
        filters["sms_status"] = sms_status
    where: list[str] = []
    params: list[object] = []
    if customer_id is not None:
        where.append('"customer_id" = %s')
        params.append(customer_id)
    if sms_status is not None:
        where.append('"sms_status" = %s')
        params.append(sms_status)
    if since is not None:
        where.append('"time" >= %s')
        params.append(since)
    if until is not None:
        where.append('"time" < %s')
        params.append(until)
    if cursor is not None:
        time, last_id = _cursor_key(decode_cursor(cursor, "orders", filters))
        # `time <= t` lets the (time, id) index start the scan at the cursor; the OR only filters
        # the rows that share its timestamp. A page costs the same at any depth. On PostgreSQL
        # the key comes from one-row subqueries the planner cannot look into: estimated alike
        # in the generic plan and in a custom one, the prepared statement keeps its generic plan
        # instead of being planned afresh for every page (docs/performance.md, decision 29).
        if connection.vendor == "postgresql":
            where.append(
                '"time" <= (SELECT %s::timestamptz)'
                ' AND ("time" < (SELECT %s::timestamptz) OR "id" < (SELECT %s::bigint))'
            )
        else:
            where.append('"time" <= %s AND ("time" < %s OR "id" < %s)')
        params += [time, time, last_id]
    return (" WHERE " + " AND ".join(where) if where else ""), params, filters


def list_orders(
    *,
    customer_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sms_status: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[OrderRead]:
    """Orders by (time, id) descending; `since` inclusive, `until` exclusive."""
    where, params, filters = page_filter(
        customer_id=customer_id, since=since, until=until, sms_status=sms_status, cursor=cursor
    )
    rows = _READER.rows(where + _NEWEST_FIRST, [*params, limit + 1])
    items = [OrderRead(*row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor("orders", filters, [last.time.isoformat(), last.id])
    return Page(items=items, next_cursor=next_cursor)

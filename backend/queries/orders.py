"""Order queries, served from the `order_view` projection, newest first."""

from __future__ import annotations

import json
from datetime import datetime

from django.utils.dateparse import parse_datetime

from backend.errors import BadRequest, NotFound
from backend.queries.models import OrderView
from backend.queries.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor, page_body
from backend.queries.resources import OrderOut
from backend.queries.sql import document, select

_SELECT = f'SELECT {document(OrderView, OrderOut)} FROM "order_view"'  # noqa: S608
_NEWEST_FIRST = ' ORDER BY "order_view"."time" DESC, "order_view"."id" DESC LIMIT %s'


def not_found(order_id: int) -> NotFound:
    return NotFound(f"Order {order_id} does not exist.")


def get_order(order_id: int) -> bytes:
    """The order's JSON (`OrderOut`)."""
    rows = select(_SELECT + ' WHERE "id" = %s', [order_id], primary_if_empty=True)
    if not rows:
        raise not_found(order_id)
    return rows[0][0].encode()


def _cursor_key(key: list[object]) -> tuple[datetime, int]:
    if len(key) == 2 and isinstance(key[0], str) and isinstance(key[1], int):
        time = parse_datetime(key[0])
        if time is not None:
            return time, key[1]
    raise BadRequest("The cursor is malformed.")


def list_orders(
    *,
    customer_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    sms_status: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> bytes:
    """The JSON page (`OrderPage`) of orders by (time, id) descending; `since` inclusive,
    `until` exclusive."""
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
        # `time <= t` lets the (time, id) index start the scan at the cursor; the OR only
        # filters the rows that share its timestamp, so a page costs the same at any depth. The
        # key comes from one-row subqueries the planner cannot look into: estimated alike in the
        # generic plan and a custom one, the prepared statement keeps its generic plan instead
        # of being planned afresh for every page.
        where.append(
            '"time" <= (SELECT %s::timestamptz)'
            ' AND ("time" < (SELECT %s::timestamptz) OR "id" < (SELECT %s::bigint))'
        )
        params += [time, time, last_id]
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + _NEWEST_FIRST
    items = [row[0] for row in select(sql, [*params, limit + 1])]
    next_cursor = None
    if len(items) > limit:
        last = json.loads(items[limit - 1])
        next_cursor = encode_cursor("orders", filters, [last["time"], last["id"]])
    return page_body(items[:limit], next_cursor)

"""Customer queries, served from the `customer_view` projection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection

from backend.errors import BadRequest, NotFound
from backend.queries.models import CustomerView
from backend.queries.pagination import DEFAULT_LIMIT, Page, decode_cursor, encode_cursor
from backend.queries.sql import ViewReader


@dataclass(frozen=True, slots=True)
class CustomerRead:
    id: int
    name: str
    code: str
    phone_number: str
    created_at: datetime
    updated_at: datetime
    order_count: int
    total_amount: Decimal
    last_order_at: datetime | None


# SQL written once at import, as in backend.queries.orders. `code` compares LOWER() on both
# sides, the expression `customer_view_code_idx` is built on, so the lookup is an index scan.
_READER = ViewReader(CustomerView, CustomerRead)
_BY_ID = ' ORDER BY "id" LIMIT %s'


def not_found(customer_id: int) -> NotFound:
    return NotFound(f"Customer {customer_id} does not exist.")


def get_customer(customer_id: int) -> CustomerRead:
    rows = _READER.rows(' WHERE "id" = %s', [customer_id])
    if not rows:
        raise not_found(customer_id)
    return CustomerRead(*rows[0])


def page_filter(
    *, code: str | None = None, search: str | None = None, cursor: str | None = None
) -> tuple[str, list[object], dict[str, object]]:
    """The WHERE clause (may be empty) and its parameters of a page of customers, and the
    filters its cursors are bound to. Shared with `backend.queries.documents`."""
    filters: dict[str, object] = {"code": code, "search": search}
    where: list[str] = []
    params: list[object] = []
    if code is not None:
        where.append('LOWER("code") = LOWER(%s)')
        params.append(code)
    if search is not None:
        # A substring test, not LIKE, so `%` and `_` in the search are plain characters.
        position = "STRPOS" if connection.vendor == "postgresql" else "INSTR"
        where.append(
            f'({position}(UPPER("name"), UPPER(%s)) > 0 OR {position}(UPPER("code"), UPPER(%s)) > 0)'
        )
        params += [search, search]
    if cursor is not None:
        key = decode_cursor(cursor, "customers", filters)
        if len(key) != 1 or not isinstance(key[0], int):
            raise BadRequest("The cursor is malformed.")
        where.append('"id" > %s')
        params.append(key[0])
    return (" WHERE " + " AND ".join(where) if where else ""), params, filters


def list_customers(
    *,
    code: str | None = None,
    search: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[CustomerRead]:
    """Customers by ascending id; `code` matches exactly and `search` as a substring, both ignoring case."""
    where, params, filters = page_filter(code=code, search=search, cursor=cursor)
    rows = _READER.rows(where + _BY_ID, [*params, limit + 1])
    items = [CustomerRead(*row) for row in rows[:limit]]
    next_cursor = encode_cursor("customers", filters, [items[-1].id]) if len(rows) > limit else None
    return Page(items=items, next_cursor=next_cursor)

"""Customer queries, served from the `customer_view` projection."""

from __future__ import annotations

from backend.errors import BadRequest, NotFound
from backend.queries.models import CustomerView
from backend.queries.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor, page_body
from backend.queries.resources import CustomerOut
from backend.queries.sql import document, select

_SELECT = f'SELECT {document(CustomerView, CustomerOut)}, "id" FROM "customer_view"'  # noqa: S608
_BY_ID = ' ORDER BY "id" LIMIT %s'


def not_found(customer_id: int) -> NotFound:
    return NotFound(f"Customer {customer_id} does not exist.")


def get_customer(customer_id: int) -> bytes:
    """The customer's JSON (`CustomerOut`)."""
    rows = select(_SELECT + ' WHERE "id" = %s', [customer_id], primary_if_empty=True)
    if not rows:
        raise not_found(customer_id)
    return rows[0][0].encode()


def list_customers(
    *,
    code: str | None = None,
    search: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> bytes:
    """The JSON page (`CustomerPage`) of customers by ascending id; `code` matches exactly and `search` as a substring, both
    ignoring case."""
    filters: dict[str, object] = {"code": code, "search": search}
    where: list[str] = []
    params: list[object] = []
    if code is not None:
        # LOWER() on both sides: the expression `customer_view_code_idx` is built on.
        where.append('LOWER("code") = LOWER(%s)')
        params.append(code)
    if search is not None:
        # A substring test, not LIKE, so `%` and `_` in the search are plain characters.
        where.append(
            '(STRPOS(UPPER("name"), UPPER(%s)) > 0 OR STRPOS(UPPER("code"), UPPER(%s)) > 0)'
        )
        params += [search, search]
    if cursor is not None:
        key = decode_cursor(cursor, "customers", filters)
        if len(key) != 1 or not isinstance(key[0], int):
            raise BadRequest("The cursor is malformed.")
        where.append('"id" > %s')
        params.append(key[0])
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + _BY_ID
    rows = select(sql, [*params, limit + 1])
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_cursor("customers", filters, [rows[limit - 1][1]])
    return page_body([row[0] for row in rows[:limit]], next_cursor)

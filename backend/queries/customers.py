"""Customer queries, served from the `customer_view` projection."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal

from django.db.models import Q

from backend.errors import BadRequest, NotFound
from backend.queries.models import CustomerView
from backend.queries.pagination import DEFAULT_LIMIT, Page, decode_cursor, encode_cursor


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


_FIELDS = [f.name for f in fields(CustomerRead)]


def get_customer(customer_id: int) -> CustomerRead:
    row = CustomerView.objects.filter(id=customer_id).values(*_FIELDS).first()
    if row is None:
        raise NotFound(f"Customer {customer_id} does not exist.")
    return CustomerRead(**row)


def list_customers(
    *,
    code: str | None = None,
    search: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[CustomerRead]:
    """Customers by ascending id; `code` matches exactly and `search` as a substring, both ignoring case."""
    filters = {"code": code, "search": search}
    qs = CustomerView.objects.all()
    if code is not None:
        qs = qs.filter(code__iexact=code)
    if search is not None:
        qs = qs.filter(Q(name__icontains=search) | Q(code__icontains=search))
    if cursor is not None:
        key = decode_cursor(cursor, "customers", filters)
        if len(key) != 1 or not isinstance(key[0], int):
            raise BadRequest("The cursor is malformed.")
        qs = qs.filter(id__gt=key[0])
    rows = list(qs.order_by("id").values(*_FIELDS)[: limit + 1])
    items = [CustomerRead(**row) for row in rows[:limit]]
    next_cursor = encode_cursor("customers", filters, [items[-1].id]) if len(rows) > limit else None
    return Page(items=items, next_cursor=next_cursor)

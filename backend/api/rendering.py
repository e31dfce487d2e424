"""JSON bodies of the hot endpoints, written straight from the query views.

Ninja would validate every outgoing object against its schema (a pydantic model built per item
through a getter wrapper) and then encode it with a Python `default()` hook per datetime and
Decimal; for a page of 50 orders that was about a third of the request's CPU time. The views
are already typed and exact (frozen dataclasses from `backend.queries`), so they are turned into
plain dicts of str/int here and encoded by the C encoder. The bytes are the same as Ninja's
(`tests/api/test_rendering.py` compares them), and the operations keep their `response=` schema,
which still documents the body in OpenAPI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.http import HttpResponse

from backend.queries import customers, documents, orders
from backend.queries.customers import CustomerRead
from backend.queries.orders import OrderRead
from backend.queries.pagination import Page

T = TypeVar("T")
CONTENT_TYPE = "application/json; charset=utf-8"


def timestamp(value: datetime | None) -> str | None:
    """The text DjangoJSONEncoder (Ninja's encoder) gives: milliseconds, `Z` for UTC."""
    if value is None:
        return None
    text = value.isoformat()
    if value.microsecond:
        text = text[:23] + text[26:]
    if text.endswith("+00:00"):
        text = text[:-6] + "Z"
    return text


def order(view: OrderRead) -> dict[str, Any]:
    return {
        "id": view.id,
        "customer_id": view.customer_id,
        "customer_code": view.customer_code,
        "customer_name": view.customer_name,
        "item": view.item,
        "amount": str(view.amount),
        "time": timestamp(view.time),
        "sms_status": view.sms_status,
        "sms_error": view.sms_error,
    }


def customer(view: CustomerRead) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "code": view.code,
        "phone_number": view.phone_number,
        "created_at": timestamp(view.created_at),
        "updated_at": timestamp(view.updated_at),
        "order_count": view.order_count,
        "total_amount": str(view.total_amount),
        "last_order_at": timestamp(view.last_order_at),
    }


def dumps(body: dict[str, Any]) -> str:
    return json.dumps(body)


def page(result: Page[T], item: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    return {"items": [item(view) for view in result.items], "next_cursor": result.next_cursor}


def json_response(body: dict[str, Any], *, status: int = 200) -> HttpResponse:
    return text_response(dumps(body), status=status)


def text_response(text: str, *, status: int = 200) -> HttpResponse:
    """A body that is already JSON text (rendered by PostgreSQL, `backend.queries.documents`)."""
    return HttpResponse(text, status=status, content_type=CONTENT_TYPE)


# The hot pages: PostgreSQL writes the JSON (`backend.queries.documents`); on SQLite (the
# quick start) the rows are rendered here, into the same bytes.


def order_page(**filters: Any) -> str:
    """`GET orders/` with `backend.queries.orders.list_orders`' keyword arguments."""
    if documents.available():
        return documents.order_page(**filters)
    return dumps(page(orders.list_orders(**filters), order))


def customer_page(**filters: Any) -> str:
    """`GET customers/` with `backend.queries.customers.list_customers`' keyword arguments."""
    if documents.available():
        return documents.customer_page(**filters)
    return dumps(page(customers.list_customers(**filters), customer))

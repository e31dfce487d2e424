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

from collections.abc import Callable
from typing import Any, TypeVar

from django.http import HttpResponse

from backend.queries import customers, documents, orders
from backend.queries.pagination import Page

# The views' representations live with the queries (a write's If-Match digests them too).
from backend.queries.representations import customer as customer
from backend.queries.representations import dumps as dumps
from backend.queries.representations import order as order
from backend.queries.representations import timestamp as timestamp

T = TypeVar("T")
CONTENT_TYPE = "application/json; charset=utf-8"


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


def order_body(order_id: int) -> str:
    """`GET orders/{id}/`: the JSON text PostgreSQL rendered with the row (no dataclass, dict or
    encoder in Python); on SQLite the Python rendering of the same bytes."""
    if documents.available():
        return documents.order(order_id)
    return dumps(order(orders.get_order(order_id)))


def customer_body(customer_id: int) -> str:
    """`GET customers/{id}/` and the writes' bodies: as `order_body`, for a customer."""
    if documents.available():
        return documents.customer(customer_id)
    return dumps(customer(customers.get_customer(customer_id)))

"""The JSON representations of the read views: the bodies of the API's reads, and what their
entity tags (`backend.queries.etags`) digest.

Here, not in `backend.api`, because a write's `If-Match` check (`backend.commands`) must compute
the very tag a GET returned, and commands never import the API. `backend.api.rendering` uses
these; `backend.queries.documents` writes the same bytes in SQL.
"""

from __future__ import annotations

import json
from typing import Any

# The text DjangoJSONEncoder (Ninja's encoder) gives: milliseconds, `Z` for UTC; webhook events
# render times the same way.
from backend.notifications.events import timestamp
from backend.queries.customers import CustomerRead
from backend.queries.orders import OrderRead


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
    """json.dumps' defaults (`ensure_ascii`, `", "` and `": "`): the bytes Ninja wrote."""
    return json.dumps(body)


def text(view: CustomerRead | OrderRead) -> str:
    """The body of `GET customers/{id}/` or `GET orders/{id}/` for `view`."""
    return dumps(customer(view) if isinstance(view, CustomerRead) else order(view))

"""Webhook event bodies (contract section 9): pure functions of values, no I/O.

`data` is the resource exactly as the API shows it (the same keys and the same JSON text as
`backend.api.rendering`, which the tests compare), built here from values the command already
holds in its transaction, so the write side never imports the API.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

EVENT_TYPES: tuple[str, ...] = (
    "order.created",
    "order.sms_status_changed",
    "customer.created",
    "customer.updated",
    "customer.deleted",
)
PING = "webhook.ping"


def timestamp(value: datetime | None) -> str | None:
    """RFC 3339 with milliseconds and `Z`, as the API renders times."""
    if value is None:
        return None
    text = value.isoformat()
    if value.microsecond:
        text = text[:23] + text[26:]
    if text.endswith("+00:00"):
        text = text[:-6] + "Z"
    return text


def new_event_id() -> str:
    """The Standard Webhooks `webhook-id` of one event (the same on every retry)."""
    return "msg_" + secrets.token_hex(16)


def customer_data(
    *,
    id: int,  # the resource's field name
    name: str,
    code: str,
    phone_number: str,
    created_at: datetime,
    updated_at: datetime,
    order_count: int,
    total_amount: Decimal,
    last_order_at: datetime | None,
) -> dict[str, Any]:
    return {
        "id": id,
        "name": name,
        "code": code,
        "phone_number": phone_number,
        "created_at": timestamp(created_at),
        "updated_at": timestamp(updated_at),
        "order_count": order_count,
        "total_amount": f"{total_amount:.2f}",
        "last_order_at": timestamp(last_order_at),
    }


def order_data(
    *,
    id: int,  # the resource's field name
    customer_id: int,
    customer_code: str,
    customer_name: str,
    item: str,
    amount: Decimal,
    time: datetime,
    sms_status: str,
    sms_error: str | None,
) -> dict[str, Any]:
    return {
        "id": id,
        "customer_id": customer_id,
        "customer_code": customer_code,
        "customer_name": customer_name,
        "item": item,
        "amount": f"{amount:.2f}",
        "time": timestamp(time),
        "sms_status": sms_status,
        "sms_error": sms_error or None,
    }


def event_body(*, event_type: str, occurred_at: datetime, data: dict[str, Any]) -> str:
    """The delivery body: the bytes that are signed and sent, stored once per event."""
    return json.dumps(
        {"type": event_type, "timestamp": timestamp(occurred_at), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )

"""Webhook event bodies (contract section 9): pure functions of values, no I/O.

`data` is the resource exactly as the API shows it (`backend.queries.resources`), built by the
command from what it wrote in its transaction.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
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
    """RFC 3339 in UTC with `Z`, as the API writes every time (pydantic's format)."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_event_id() -> str:
    """The Standard Webhooks `webhook-id` of one event (the same on every retry)."""
    return "msg_" + secrets.token_hex(16)


def event_body(*, event_type: str, occurred_at: datetime, data: dict[str, Any]) -> str:
    """The delivery body: the bytes that are signed and sent, stored once per event."""
    return json.dumps(
        {"type": event_type, "timestamp": timestamp(occurred_at), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import Field, StringConstraints

from backend.api.schemas.common import NO_NUL, InputSchema

EventType = Literal[
    "order.created",
    "order.sms_status_changed",
    "customer.created",
    "customer.updated",
    "customer.deleted",
]
# The read scope each event type's `data` needs: an event carries the resource as the API shows
# it, so subscribing is reading (contract section 9).
READ_SCOPE_OF_EVENT: dict[str, str] = {
    "order.created": "orders:read",
    "order.sms_status_changed": "orders:read",
    "customer.created": "customers:read",
    "customer.updated": "customers:read",
    "customer.deleted": "customers:read",
}
Url = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=NO_NUL),
    Field(
        description="An https URL that resolves to public addresses only (http and private "
        "addresses only with WEBHOOKS_ALLOW_PRIVATE=1)."
    ),
]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=500, pattern=NO_NUL)
]


class WebhookEndpointIn(InputSchema):
    url: Url
    events: list[EventType] = Field(min_length=1, max_length=len(EventType.__args__))
    description: Description = ""


class WebhookEndpointOut(Schema):
    id: int
    url: str = Field(
        description="The URL without its query string (shown whole only when it is created)."
    )
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the endpoint was disabled (410 Gone, or 3 days of failures); null while enabled."
    )
    created_at: datetime
    last_attempt_at: datetime | None
    last_error: str | None = Field(
        description="The last failed attempt's error; null after a success."
    )


class WebhookEndpointCreated(WebhookEndpointOut):
    url: str = Field(description="The URL as given, query string included: shown whole only here.")
    secret: str = Field(
        description="`whsec_<base64>`: the signing secret. Shown only in this response."
    )


class WebhookEndpointPage(Schema):
    items: list[WebhookEndpointOut]
    next_cursor: str | None


class WebhookPingAccepted(Schema):
    event_id: str = Field(description="The `webhook-id` the ping is delivered with.")

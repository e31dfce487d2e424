"""Each resource as the API shows it, declared once.

The writes build their 201 bodies and webhook `data` from these, the API's schemas (so the
OpenAPI document) are these classes, and the reads have PostgreSQL render the same JSON from
the projection rows with SQL derived from these fields (`backend.queries.sql.document`). Times
are RFC 3339 in UTC as pydantic writes them (`2026-11-27T08:30:00.123000Z`, no fraction on a
whole second). `tests/api/test_resources.py` checks that every field here is a column of its
projection, comes out of the rebuild, and reads back byte for byte as pydantic writes it, so a
field forgotten in one of them fails a test instead of reading as null.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

SmsStatus = Literal["pending", "sent", "delivered", "failed"]

MONEY_PLACES = 2
MONEY = PlainSerializer(
    lambda value: f"{value:.{MONEY_PLACES}f}", return_type=str, when_used="json"
)
Money = Annotated[Decimal, MONEY, Field(description="Decimal string with two places.")]


class Representation(BaseModel):
    model_config = ConfigDict(frozen=True)

    def body(self) -> bytes:
        """The response body: compact JSON, UTF-8."""
        return self.__pydantic_serializer__.to_json(self)


class Resource(Representation):
    def data(self) -> dict[str, Any]:
        """The JSON-ready dict of this resource (a webhook event's `data`)."""
        return self.model_dump(mode="json")


class CustomerOut(Resource):
    id: int
    name: str
    code: str
    phone_number: str
    created_at: datetime
    updated_at: datetime
    order_count: int
    total_amount: Money
    last_order_at: datetime | None


class OrderOut(Resource):
    id: int
    customer_id: int
    customer_code: str
    customer_name: str
    item: str
    amount: Money
    note: str | None
    time: datetime
    sms_status: SmsStatus
    sms_error: str | None = Field(
        description="Why the last attempt or the delivery report failed, as a short word "
        "(`InvalidPhoneNumber`, `UserInBlacklist`, `HTTP 503`, `Timeout`, ...); null otherwise.",
    )


class CustomerPage(Representation):
    items: list[CustomerOut]
    next_cursor: str | None


class OrderPage(Representation):
    items: list[OrderOut]
    next_cursor: str | None

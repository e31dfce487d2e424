from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Schema
from pydantic import AfterValidator, Field, StrictInt

from backend.api.schemas.common import MAX_ID, InputSchema, TrimmedText

CENT = Decimal("0.01")
Amount = Annotated[
    Decimal,
    Field(
        gt=0,
        max_digits=12,
        decimal_places=2,
        description="Money: > 0, at most 2 decimal places and 10 digits before the point; number or string.",
    ),
    # One canonical form, so 10, "10" and 10.0 are the same body for Idempotency-Key purposes.
    AfterValidator(lambda amount: amount.quantize(CENT)),
]


class OrderIn(InputSchema):
    customer_id: Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
    item: TrimmedText
    amount: Amount


class OrderOut(Schema):
    id: int
    customer_id: int
    customer_code: str
    customer_name: str
    item: str
    amount: Decimal = Field(description="Decimal string with two places.")
    time: datetime
    sms_status: Literal["pending", "sent", "delivered", "failed"]


class OrderPage(Schema):
    items: list[OrderOut]
    next_cursor: str | None

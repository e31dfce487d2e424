"""Each resource as the API shows it, declared once.

The reads return these (validated from the projection rows, whose columns carry the same
names), the writes build their 201 bodies and webhook `data` from them, and the API's schemas,
so the OpenAPI document, are these classes. Times are RFC 3339 in UTC as pydantic writes them
(`2026-11-27T08:30:00.123000Z`, no fraction on a whole second). `tests/api/test_resources.py` checks that
every field here is a column of its projection and comes out of the rebuild, so a field
forgotten in one of them fails a test instead of reading as null.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, TypeAdapter

SmsStatus = Literal["pending", "sent", "delivered", "failed"]

Money = Annotated[
    Decimal,
    PlainSerializer(lambda value: f"{value:.2f}", return_type=str, when_used="json"),
    Field(description="Decimal string with two places."),
]


class Representation(BaseModel):
    model_config = ConfigDict(frozen=True)

    def body(self) -> bytes:
        """The response body: compact JSON, UTF-8."""
        return self.__pydantic_serializer__.to_json(self)


class Resource(Representation):
    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[object]]) -> list[Self]:
        """From projection rows whose columns are this class's fields, in order."""
        names, adapter = _reader(cls)
        return adapter.validate_python([dict(zip(names, row, strict=True)) for row in rows])

    def data(self) -> dict[str, Any]:
        """The JSON-ready dict of this resource (a webhook event's `data`)."""
        return self.model_dump(mode="json")


@cache
def _reader(resource: type[Resource]) -> tuple[tuple[str, ...], TypeAdapter]:
    """The field names and a list validator of `resource`: one validator call per page."""
    return tuple(resource.model_fields), TypeAdapter(list[resource])  # type: ignore[valid-type]


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

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
)

from backend.api.schemas.common import MAX_ID, InputSchema, NoNul, TrimmedText
from backend.queries.resources import OrderOut as OrderOut
from backend.queries.resources import OrderPage as OrderPage
from backend.queries.resources import SmsStatus as SmsStatus

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999.99")
# A string amount is plain decimal notation. Pydantic alone also takes "1e2", " 10 ", "1_000" and
# non-ASCII digits, none of which the document could describe.
DECIMAL_STRING = r"^[0-9]{1,10}(\.[0-9]{1,2})?$"


def _plain_decimal_string(value: object) -> object:
    if isinstance(value, str) and not re.fullmatch(DECIMAL_STRING, value):
        raise ValueError('must be a number or a decimal string such as "1500.00"')
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_plain_decimal_string),
    Field(
        gt=0,
        max_digits=12,
        decimal_places=2,
        description="Money: > 0, at most 2 decimal places and 10 digits before the point; number or string.",
    ),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": float(MAX_AMOUNT),
                    "multipleOf": 0.01,
                },
                {"type": "string", "pattern": DECIMAL_STRING},
            ]
        }
    ),
    # One canonical form, so 10, "10" and 10.0 are the same body for Idempotency-Key purposes.
    AfterValidator(lambda amount: amount.quantize(CENT)),
]


def _integral_number(value: object) -> object:
    """`5.0` is an integer in JSON Schema; the parser hands it over as Decimal("5.0").

    Only within bigint's 19 digits: int() of `1e999999999` would build a billion-digit number."""
    if (
        isinstance(value, Decimal)
        and value.is_finite()
        and value.adjusted() < 19
        and value == value.to_integral_value()
    ):
        return int(value)
    return value


class OrderIn(InputSchema):
    # Strict: "5" and true are refused, whatever JSON number equals an integer is accepted.
    customer_id: Annotated[StrictInt, BeforeValidator(_integral_number), Field(ge=1, le=MAX_ID)]
    item: TrimmedText
    amount: Amount
    note: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, max_length=500),
            NoNul,
            Field(
                description="Free text shown with the order (0-500 characters, trimmed); not in the SMS."
            ),
        ]
        | None
    ) = None

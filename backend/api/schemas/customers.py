from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema

from backend.api.schemas.common import InputSchema, TrimmedText
from backend.commands.phone import normalize_phone_number
from backend.queries.resources import CustomerOut as CustomerOut
from backend.queries.resources import CustomerPage as CustomerPage

Name = TrimmedText
Code = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$"),
    Field(description="1-32 characters of A-Z, a-z, 0-9, `_` and `-`; unique ignoring case."),
]
Phone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(normalize_phone_number),
    Field(
        description="Any common notation; numbers without `+` use SMS_DEFAULT_REGION. Returned as E.164.",
        # Not a JSON Schema format: it names the rule (a number `phonenumbers` accepts) for tools.
        json_schema_extra={"format": "phone"},
    ),
]


class CustomerIn(InputSchema):
    name: Name
    code: Code
    phone_number: Phone


class CustomerPatch(InputSchema):
    # `null` is refused (see below), so the document does not offer it.
    name: Name | SkipJsonSchema[None] = None
    code: Code | SkipJsonSchema[None] = None
    phone_number: Phone | SkipJsonSchema[None] = None

    @field_validator("name", "code", "phone_number", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be omitted but not null")
        return value

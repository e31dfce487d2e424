from __future__ import annotations

from datetime import datetime
from typing import Annotated

from ninja import Schema
from pydantic import AfterValidator, ConfigDict, Field


class InputSchema(Schema):
    # Unknown fields are refused (422) so a typo never silently does nothing.
    model_config = ConfigDict(extra="forbid")


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(
            "must be an RFC 3339 timestamp with a UTC offset, e.g. 2026-11-27T08:30:00Z"
        )
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
Limit = Annotated[int, Field(ge=1, le=200, description="Page size, 1-200.")]
Cursor = Annotated[
    str, Field(min_length=1, max_length=1000, description="`next_cursor` of the previous page.")
]
# Ids fit PostgreSQL's bigint; a larger number can only be unknown, never a database error.
MAX_ID = 2**63 - 1
ResourceId = Annotated[int, Field(ge=1, le=MAX_ID)]

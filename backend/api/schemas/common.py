from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StringConstraints


class InputSchema(Schema):
    # Unknown fields are refused (422) so a typo never silently does nothing.
    model_config = ConfigDict(extra="forbid")


_RFC3339_HINT = "must be an RFC 3339 timestamp with a UTC offset, e.g. 2026-11-27T08:30:00Z"
# Pydantic alone also takes Unix times ("0.5") and offsets PostgreSQL refuses (beyond +-15:59).
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc3339(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError(_RFC3339_HINT)


def _aware(value: datetime) -> datetime:
    """In UTC, so any offset RFC 3339 allows reaches the database as a value it accepts."""
    if value.tzinfo is None:
        raise ValueError(_RFC3339_HINT)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # Within a day of year 1 or 9999: no stored time lies beyond, so the bound is exact.
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


AwareDatetime = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_aware)]


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; without this check it is a 500 from the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


NoNul = AfterValidator(_no_nul)
# Text fields are trimmed (Rust `str::trim`, Unicode White_Space) before their length is checked.
# The pattern tells clients the same, and the NUL rule: no NUL, and at least one character that
# trimming keeps.
_WHITE_SPACE = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK_NO_NUL = rf"^[^\u0000]*[^\u0000{_WHITE_SPACE}][^\u0000]*$"
NO_NUL = r"^[^\u0000]*$"

TrimmedText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    NoNul,
    Field(json_schema_extra={"pattern": NOT_BLANK_NO_NUL}),
]
# Free-text query parameters: the customers list's `search` and `code` filters.
QueryText = Annotated[
    str, Field(min_length=1, max_length=200, json_schema_extra={"pattern": NO_NUL}), NoNul
]
CodeFilter = Annotated[str, Field(max_length=32, json_schema_extra={"pattern": NO_NUL}), NoNul]
Limit = Annotated[int, Field(ge=1, le=200, description="Page size, 1-200.")]
# No length limit here: a cursor is checked by its signature, and any that fails is a 400
# (contract section 5), an over-long one included.
Cursor = Annotated[str, Field(min_length=1, description="`next_cursor` of the previous page.")]
# Ids fit PostgreSQL's bigint; a larger number can only be unknown, never a database error.
MAX_ID = 2**63 - 1
ResourceId = Annotated[int, Field(ge=1, le=MAX_ID)]

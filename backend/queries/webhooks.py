"""Webhook endpoint reads (`webhook_endpoints`, written by `backend.commands.webhook_endpoints`).

Plain SQL over the table, so this package never imports the write side's models. Reads go to
the primary (the default connection): an endpoint is read back right after it is created.

Every read is for one `owner` (the caller's token `sub`): another subject's endpoint is missing.
The `url` is returned whole; `public_url` is what the API shows after the 201 (no query string,
which may carry a capability token).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from backend.errors import BadRequest, NotFound
from backend.queries.pagination import DEFAULT_LIMIT, Page, decode_cursor, encode_cursor
from backend.queries.sql import select


@dataclass(frozen=True, slots=True)
class WebhookEndpointRead:
    id: int
    url: str
    events: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    last_error: str | None

    @property
    def public_url(self) -> str:
        """The URL without its query string (and without a fragment, which URLs here never
        have): capability URLs (`?token=...`) are shown whole only in the create response."""
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


_SELECT = (
    'SELECT "id", "url", "events", "description", "enabled", "disabled_reason", "created_at", '
    '"last_attempt_at", "last_error" FROM "webhook_endpoints" '
    'WHERE "deleted_at" IS NULL AND "owner" = %s'
)


def _read(row: tuple[Any, ...]) -> WebhookEndpointRead:
    values = list(row)
    values[2] = json.loads(values[2])  # Django leaves jsonb as text for JSONField to parse
    values[5] = values[5] or None  # "" in the table: not disabled
    values[8] = values[8] or None
    return WebhookEndpointRead(*values)


def get_webhook_endpoint(endpoint_id: int, *, owner: str) -> WebhookEndpointRead:
    rows = select(_SELECT + ' AND "id" = %s', [owner, endpoint_id], primary_if_empty=True)
    if not rows:
        raise NotFound(f"Webhook endpoint {endpoint_id} does not exist.")
    return _read(rows[0])


def list_webhook_endpoints(
    *, owner: str, cursor: str | None = None, limit: int = DEFAULT_LIMIT
) -> Page[WebhookEndpointRead]:
    """The owner's endpoints by ascending id (deleted ones are gone). A cursor is bound to its
    owner: another subject's cursor is a 400."""
    params: list[object] = [owner]
    sql = _SELECT
    filters = {"owner": owner}
    if cursor is not None:
        key = decode_cursor(cursor, "webhooks", filters)
        if len(key) != 1 or not isinstance(key[0], int):
            raise BadRequest("The cursor is malformed.")
        sql += ' AND "id" > %s'
        params.append(key[0])
    rows = select(sql + ' ORDER BY "id" LIMIT %s', [*params, limit + 1])
    items = [_read(row) for row in rows[:limit]]
    next_cursor = encode_cursor("webhooks", filters, [items[-1].id]) if len(rows) > limit else None
    return Page(items=items, next_cursor=next_cursor)

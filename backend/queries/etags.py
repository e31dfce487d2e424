"""Strong entity tags of the read views (RFC 9110 8.8.3).

A view's tag is a digest of every field its JSON representation is made of, so it changes exactly
when the representation does (a rename, a new order changing `order_count`, an SMS status). The
same function serves `ETag` on reads and the `If-Match` check inside a write's transaction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from backend.queries.customers import CustomerRead
from backend.queries.orders import OrderRead


def _canonical(value: Any) -> Any:
    # The same instant from PostgreSQL or SQLite, whatever tzinfo object the driver attached.
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value if isinstance(value, int | str | None) else str(value)


def etag(view: CustomerRead | OrderRead) -> str:
    """`"<32 hex digits>"`: quoted and strong (never `W/`)."""
    fields = [_canonical(getattr(view, f.name)) for f in dataclasses.fields(view)]
    digest = hashlib.sha256(json.dumps([type(view).__name__, fields]).encode()).hexdigest()
    return f'"{digest[:32]}"'

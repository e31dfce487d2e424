"""Strong entity tags of the read views (RFC 9110 8.8.3).

A view's tag is a digest of its JSON representation, the response body itself, so it changes
exactly when the representation does (a rename, a new order changing `order_count`, an SMS
status). A GET digests the body it sends (for an order, the text PostgreSQL rendered, no Python
objects in between); a write's `If-Match` check inside its transaction renders the view it
locked into the same bytes (`representations.text`) and digests those.
"""

from __future__ import annotations

import hashlib

from backend.queries import representations
from backend.queries.customers import CustomerRead
from backend.queries.orders import OrderRead


def tag(body: str) -> str:
    """`"<32 hex digits>"` of a representation's JSON text: quoted and strong (never `W/`)."""
    return f'"{hashlib.sha256(body.encode()).hexdigest()[:32]}"'


def etag(view: CustomerRead | OrderRead) -> str:
    """The tag a GET of `view` returns."""
    return tag(representations.text(view))

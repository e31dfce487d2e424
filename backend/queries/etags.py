"""Strong entity tags of the resources (RFC 9110 8.8.3).

A resource's tag is a digest of its representation, the response body itself, so it changes
exactly when the representation does (a rename, a new order changing `order_count`, an SMS
status). A GET digests the body it sends; a write's `If-Match` check inside its transaction
renders the resource it locked and digests that.
"""

from __future__ import annotations

import hashlib


def tag(body: bytes) -> str:
    """`"<32 hex digits>"` of a representation's JSON: quoted and strong (never `W/`)."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'

"""The request id of the work in progress, visible to every log line written on its behalf.

A context variable rather than a thread-local: it is per thread for gunicorn's threads and the
Dramatiq worker threads alike, and it follows `asyncio` tasks if an async view ever appears.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token

REQUEST_ID_HEADER = "X-Request-ID"
# What we accept from a client or proxy: UUIDs, trace ids and the like. Nothing that could
# break a log line or a header (no spaces, quotes or control characters), and bounded in size.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}")

_request_id: ContextVar[str | None] = ContextVar("duka_request_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_request_id(value: str | None) -> str | None:
    """`value` when it is a sane request id, else None (the caller generates one)."""
    if value is None:
        return None
    value = value.strip()
    return value if _SANE.fullmatch(value) else None


def current_request_id() -> str | None:
    return _request_id.get()


def bind_request_id(value: str | None) -> Token[str | None]:
    """Make `value` the current request id; pass the token to `unbind_request_id` when done."""
    return _request_id.set(value)


def unbind_request_id(token: Token[str | None]) -> None:
    _request_id.reset(token)

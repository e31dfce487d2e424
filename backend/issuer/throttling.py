"""Limits on failed client authentications at the built-in issuer's token endpoint.

A client secret can be guessed only as fast as the token endpoint answers; after
`ISSUER_AUTH_FAILURES_PER_CLIENT` failures for one client id, or `ISSUER_AUTH_FAILURES_PER_ADDRESS`
from one address, within a fixed window of `ISSUER_AUTH_FAILURE_WINDOW_S`, every token request
for that client id or from that address is refused with 429 and `Retry-After` (the right secret
too: otherwise the limit would not stop a guesser) until the window ends.

Counters live in the Django cache (Redis when REDIS_URL is set, so all processes share them).
If the cache is unreachable the request is let through, as for the API's write limit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import math
import time
from urllib.parse import unquote_plus

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)


def claimed_client_id(request: HttpRequest) -> str:
    """The client id a token request claims (HTTP Basic first, then the form), or ""."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return unquote_plus(decoded.partition(":")[0])
    value = request.POST.get("client_id", "")
    return value if isinstance(value, str) else ""


def client_address(request: HttpRequest) -> str:
    """The caller's address. Behind the trusted TLS proxy (DJANGO_SECURE_PROXY_SSL_HEADER) the
    last X-Forwarded-For entry, the one that proxy appended; a client cannot forge that one."""
    if settings.SECURE_PROXY_SSL_HEADER:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(client_id: str, address: str, window: int) -> dict[str, int]:
    """Cache key -> limit, for this window."""
    bucket = int(time.time() // window)

    def digest(value: str) -> str:
        return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    keys = {
        f"issuer:auth-failures:address:{digest(address)}:{bucket}": (
            settings.ISSUER_AUTH_FAILURES_PER_ADDRESS
        )
    }
    if client_id:
        keys[f"issuer:auth-failures:client:{digest(client_id)}:{bucket}"] = (
            settings.ISSUER_AUTH_FAILURES_PER_CLIENT
        )
    return keys


def retry_after(*, client_id: str, address: str) -> int | None:
    """Seconds until this client id and address may try again, or None when they may now."""
    window = settings.ISSUER_AUTH_FAILURE_WINDOW_S
    limits = _keys(client_id, address, window)
    try:
        counts = cache.get_many(list(limits))
    except Exception:  # fail open, see module docstring
        logger.warning("token-endpoint limit cache unavailable; request let through", exc_info=True)
        return None
    if any(counts.get(key, 0) >= limit for key, limit in limits.items()):
        now = time.time()
        return max(1, math.ceil((int(now // window) + 1) * window - now))
    return None


def record_failure(*, client_id: str, address: str) -> None:
    window = settings.ISSUER_AUTH_FAILURE_WINDOW_S
    try:
        for key in _keys(client_id, address, window):
            cache.add(key, 0, timeout=window + 1)
            cache.incr(key)
    except Exception:
        logger.warning("token-endpoint limit cache unavailable; failure not counted", exc_info=True)

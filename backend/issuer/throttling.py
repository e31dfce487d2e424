"""Limits on failed client authentications at the built-in issuer's token endpoint.

Only failures are counted and only failing requests are refused: the toolkit checks the
credentials first, a request with the right ones gets its token whatever the counters say, and a
failed one past `ISSUER_AUTH_FAILURES_PER_CLIENT` failures for its client id, or
`ISSUER_AUTH_FAILURES_PER_ADDRESS` from its address, within a fixed window of
`ISSUER_AUTH_FAILURE_WINDOW_S`, is answered 429 with `Retry-After` instead of 401. Refusing the
right secret too would let anyone lock out every client whose id is known (ids are in every
token's `sub`), and behind a proxy every caller at once. Secrets are 128 random characters, so
the limit is not what stops guessing; it tells a misconfigured or hostile caller to back off.

Counters live in the Django cache (Redis when REDIS_URL is set, so all processes share them).
If the cache is unreachable the failure is not counted, as for the API's write limit.
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

from backend.addresses import client_address

__all__ = ["claimed_client_id", "client_address", "record_failure"]

logger = logging.getLogger(__name__)


def basic_credentials(request: HttpRequest) -> str | None:
    """The base64 part of an `Authorization: Basic ...` header (scheme in any case), or None."""
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    return credentials.strip()


def claimed_client_id(request: HttpRequest) -> str:
    """The client id a token request claims (HTTP Basic first, then the form), or ""."""
    credentials = basic_credentials(request)
    if credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return unquote_plus(decoded.partition(":")[0])
    value = request.POST.get("client_id", "")
    return value if isinstance(value, str) else ""


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


def record_failure(*, client_id: str, address: str) -> int | None:
    """Count one failed authentication; the seconds to wait when a limit is now exceeded."""
    window = settings.ISSUER_AUTH_FAILURE_WINDOW_S
    exceeded = False
    try:
        for key, limit in _keys(client_id, address, window).items():
            cache.add(key, 0, timeout=window + 1)
            exceeded |= cache.incr(key) > limit
    except Exception:  # fail open, see module docstring
        logger.warning("token-endpoint limit cache unavailable; failure not counted", exc_info=True)
        return None
    if not exceeded:
        return None
    now = time.time()
    return max(1, math.ceil((int(now // window) + 1) * window - now))

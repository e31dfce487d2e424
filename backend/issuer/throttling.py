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
from urllib.parse import unquote_plus

from django.conf import settings
from django.http import HttpRequest

from backend.limits import client_address, count_failure, window_key

__all__ = ["basic_credentials", "claimed_client_id", "client_address", "record_failure"]


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


def record_failure(*, client_id: str, address: str) -> int | None:
    """Count one failed authentication; the seconds to wait when a limit is now exceeded."""
    window = settings.ISSUER_AUTH_FAILURE_WINDOW_S
    limits = {
        window_key("issuer:auth-failures:address", address, window): (
            settings.ISSUER_AUTH_FAILURES_PER_ADDRESS
        )
    }
    if client_id:
        limits[window_key("issuer:auth-failures:client", client_id, window)] = (
            settings.ISSUER_AUTH_FAILURES_PER_CLIENT
        )
    return count_failure(limits, window=window)

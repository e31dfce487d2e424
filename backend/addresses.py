"""The address a request came from, for per-address limits.

Behind `TRUSTED_PROXY_COUNT` reverse proxies (`DJANGO_TRUSTED_PROXY_COUNT`) each proxy appends the
address it received the request from to `X-Forwarded-For`, so the caller is the entry that many
places from the right; entries further left were written by the caller and are ignored (trusting
them would let anyone pick the address a limit counts against). Without trusted proxies, or when
no such header came, the socket's peer (`REMOTE_ADDR`) is the caller.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The caller's address as the nearest untrusted hop; never empty."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
        hops = [hop for hop in hops if hop]
        if hops:
            # Fewer entries than proxies: the leftmost one was still written by a trusted proxy.
            return hops[-min(proxies, len(hops))]
    return request.META.get("REMOTE_ADDR", "") or "unknown"

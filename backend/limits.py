"""Per-address limits on failed attempts: the caller's address, and a fixed-window counter.

Behind `TRUSTED_PROXY_COUNT` reverse proxies (`DJANGO_TRUSTED_PROXY_COUNT`) each proxy appends the
address it received the request from to `X-Forwarded-For`, so the caller is the entry that many
places from the right; entries further left were written by the caller and are ignored (trusting
them would let anyone pick the address a limit counts against). Without trusted proxies, or when
no such header came, the socket's peer (`REMOTE_ADDR`) is the caller.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Mapping

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)


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


def window_key(kind: str, value: str, window: int) -> str:
    """The cache key counting `kind` failures of `value` in the current fixed window (hashed: the
    value may be anything a caller sent)."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{kind}:{digest}:{int(time.time() // window)}"


def count_failure(limits: Mapping[str, int], *, window: int) -> int | None:
    """Count one failure under each key of `limits` (key -> limit, from `window_key`); the
    seconds until the window ends when a count is now over its limit, else None.

    Counters live in the Django cache (Redis when REDIS_URL is set, so processes share them). If
    the cache is unreachable the failure is not counted: a limiter must not turn a Redis outage
    into an outage of what it guards.
    """
    exceeded = False
    try:
        for key, limit in limits.items():
            cache.add(key, 0, timeout=window + 1)
            exceeded |= cache.incr(key) > limit
    except Exception:
        logger.warning("failure-limit cache unavailable; failure not counted", exc_info=True)
        return None
    if not exceeded:
        return None
    now = time.time()
    return max(1, math.ceil((int(now // window) + 1) * window - now))


def limit_reached(limits: Mapping[str, int], *, window: int) -> int | None:
    """Without counting anything: the seconds until the window ends when a count under `limits`
    (as for `count_failure`) has reached its limit, so one more failure would be one too many;
    else None (also when the cache is unreachable, for the same reason as there)."""
    try:
        counts = cache.get_many(list(limits))
    except Exception:
        logger.warning("failure-limit cache unavailable; limits not checked", exc_info=True)
        return None
    if not any(counts.get(key, 0) >= limit for key, limit in limits.items()):
        return None
    now = time.time()
    return max(1, math.ceil((int(now // window) + 1) * window - now))

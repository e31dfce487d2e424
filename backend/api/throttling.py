"""Per-subject write limit (`RATE_LIMIT_WRITES`, e.g. `100/m`), shared through the Django cache.

A fixed window counted with the cache's atomic `incr`: Redis when REDIS_URL is set (one limit
across every process and replica), process memory otherwise. If the cache is unreachable the
request is let through: a rate limiter must not turn a Redis outage into an API outage.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

logger = logging.getLogger(__name__)
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    count, unit = rate.split("/", 1)
    return int(count), _PERIODS[unit]


class WriteRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        # Ninja asks `wait()` right after a refusal on the same thread; threads share this object.
        self._local = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        rate = settings.RATE_LIMIT_WRITES
        subject = getattr(request.auth, "subject", None)
        if not rate or not subject:
            return True
        limit, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        key = f"ratelimit:writes:{subject}:{period}:{window}"
        try:
            cache.add(key, 0, timeout=period + 1)
            used = cache.incr(key)
        except Exception:  # fail open, see module docstring
            logger.warning("rate limit cache unavailable; request let through", exc_info=True)
            return True
        if used <= limit:
            return True
        self._local.wait = (window + 1) * period - now
        return False

    def wait(self) -> float:
        return max(1.0, math.ceil(getattr(self._local, "wait", 1.0)))


write_limit = WriteRateThrottle()

from __future__ import annotations

from datetime import datetime

from django.utils import timezone


def now_ms() -> datetime:
    """Current UTC time at millisecond precision: what the API shows is exactly what is stored, so
    a `time` read from one response works as an inclusive `since` bound in the next."""
    now = timezone.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)

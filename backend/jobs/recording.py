"""Recording an attempt's outcome, shared by the SMS and webhook actors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

logger = logging.getLogger(__name__)

T = TypeVar("T")


def with_db_retries(record: Callable[[], T], *, what: str) -> T:
    """Run `record` (one short transaction), retrying database errors after each of
    OUTBOX_RECORD_RETRY_DELAYS_SECONDS: an outcome lost right after the gateway or receiver
    answered would mean a second send once the claim lease expires. The leases are sized to
    outlast these waits."""
    for delay in settings.OUTBOX_RECORD_RETRY_DELAYS_SECONDS:
        try:
            return record()
        except (OperationalError, InterfaceError) as exc:
            logger.warning(
                "Database error while recording %s outcome, retrying in %.1fs: %s", what, delay, exc
            )
            time.sleep(delay)
            close_old_connections()
    return record()

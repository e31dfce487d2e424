from __future__ import annotations

import time

import pytest
from django.db import close_old_connections

from backend.commands.models import SmsNotification
from backend.queries.models import OrderView


def wait_for_sms_status(order_id: int, *statuses: str, timeout: float = 15.0) -> SmsNotification:
    """Poll the outbox row of `order_id` until its status is one of `statuses` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        close_old_connections()
        row = SmsNotification.objects.get(order_id=order_id)
        if row.status in statuses:
            view_status = OrderView.objects.get(id=order_id).sms_status
            assert view_status == row.status, "read model out of step with the outbox"
            return row
        if time.monotonic() > deadline:
            pytest.fail(
                f"SMS of order {order_id} still {row.status!r} after {timeout}s (last error: {row.last_error})"
            )
        time.sleep(0.05)


def gateway_env(gateway) -> dict[str, str]:
    """Environment pointing a worker subprocess at the loopback gateway."""
    return {
        "AFRICAS_TALKING_USERNAME": gateway.username,
        "AFRICAS_TALKING_API_KEY": gateway.api_key,
        "AFRICAS_TALKING_API_URL": gateway.url,
    }

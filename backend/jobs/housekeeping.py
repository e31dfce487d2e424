"""Periodic clean-up, run by the outbox dispatcher of each worker process (every
HOUSEKEEPING_INTERVAL_SECONDS, first at start-up): expired idempotency records, the built-in
issuer's expired tokens, early delivery reports that never found their message, and webhook
deliveries finished (delivered or given up) more than WEBHOOK_RETENTION_SECONDS ago.

Every step is an idempotent DELETE, so replicas running it at the same time only share work.
"""

from __future__ import annotations

import logging

from oauth2_provider.models import clear_expired

from backend.commands import idempotency
from backend.commands.outbox import sms_notifications, webhook_deliveries

logger = logging.getLogger(__name__)


def run() -> dict[str, int]:
    """One round; returns what each step removed (tokens: counted by DOT's own log only)."""
    removed = {
        "idempotency_records": idempotency.purge_expired(),
        "early_delivery_reports": sms_notifications.purge_early_reports(),
        "webhook_deliveries": webhook_deliveries.purge_finished(),
    }
    clear_expired()  # django-oauth-toolkit's `cleartokens`
    return removed


def run_guarded() -> None:
    try:
        removed = run()
    except Exception as exc:  # a failed round is retried at the next interval
        logger.warning("Housekeeping failed (%s: %s)", type(exc).__name__, exc)
        return
    logger.info("Housekeeping done: %s", removed, extra={"event": "housekeeping", **removed})

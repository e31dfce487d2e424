"""Periodic clean-up, run next to the outbox dispatcher of each worker process (every
HOUSEKEEPING_INTERVAL_SECONDS, first at start-up): expired idempotency records, the built-in
issuer's expired tokens, early delivery reports that never found their message, and webhook
deliveries finished (delivered or given up) more than WEBHOOK_RETENTION_SECONDS ago.

It runs in a thread of its own (`Housekeeper`), never in the dispatcher's publishing loop, and
deletes in batches (backend.commands.batches), each one short statement: a purge at volume
neither stalls publishing nor runs into the statement timeout. Every step is an idempotent
DELETE, so replicas running it at the same time only share work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections, connection
from oauth2_provider.models import clear_expired

from backend.commands import idempotency
from backend.commands.outbox import sms_notifications, webhook_deliveries
from backend.jobs.background import BackgroundLoop

logger = logging.getLogger(__name__)


def run(*, stopping: Callable[[], bool] | None = None) -> dict[str, int]:
    """One round; returns what each step removed (tokens: counted by DOT's own log only; DOT
    deletes them in batches of its CLEAR_EXPIRED_TOKENS_BATCH_SIZE)."""
    removed = {
        "idempotency_records": idempotency.purge_expired(stopping=stopping),
        "early_delivery_reports": sms_notifications.purge_early_reports(stopping=stopping),
        "webhook_deliveries": webhook_deliveries.purge_finished(stopping=stopping),
    }
    if stopping is None or not stopping():
        clear_expired()  # django-oauth-toolkit's `cleartokens`
    return removed


def run_guarded(*, stopping: Callable[[], bool] | None = None) -> None:
    try:
        removed = run(stopping=stopping)
    except Exception as exc:  # a failed round is retried at the next interval
        logger.warning("Housekeeping failed (%s: %s)", type(exc).__name__, exc)
        return
    logger.info("Housekeeping done: %s", removed, extra={"event": "housekeeping", **removed})


class Housekeeper(BackgroundLoop):
    """Runs a round at start and then every HOUSEKEEPING_INTERVAL_SECONDS in a daemon thread,
    with its own database connection, until `stop`."""

    thread_name = "housekeeping"

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                close_old_connections()
                run_guarded(stopping=self._stop.is_set)
                close_old_connections()
                self._stop.wait(float(settings.HOUSEKEEPING_INTERVAL_SECONDS))
        finally:
            connection.close()

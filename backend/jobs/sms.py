"""SMS actor: send one outbox row through the gateway and record the outcome.

At-least-once delivery from the broker is made at-most-once-per-acceptance by the claim in
`backend.commands.sms`: a redelivered or duplicated message finds the row sent, failed, not yet
due or claimed by someone else, and does nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal, TypeVar

import dramatiq
from django.db import InterfaceError, OperationalError, close_old_connections

import backend.jobs.broker  # noqa: F401 - sets the global broker before the actor binds to it
from backend.commands import sms
from backend.integrations.africastalking import (
    PermanentSmsError,
    SmsGateway,
    TransientSmsError,
    get_gateway,
)
from backend.jobs.metrics import SMS_NOTIFICATIONS, SMS_SEND_SECONDS
from backend.observability.jobs import job_options

logger = logging.getLogger(__name__)

QUEUE = "sms"
T = TypeVar("T")
Result = Literal["sent", "retry", "failed", "skipped", "stale"]


def _with_db_retries(record: Callable[[], T]) -> T:
    """Recording an outcome right after the gateway call must not be lost to a database blip:
    losing a `sent` would mean a second SMS once the claim lease expires."""
    delays = (0.5, 1.0, 2.0, 4.0)
    for delay in delays:
        try:
            return record()
        except (OperationalError, InterfaceError) as exc:
            logger.warning(
                "Database error while recording an SMS outcome, retrying in %.1fs: %s", delay, exc
            )
            time.sleep(delay)
            close_old_connections()
    return record()


def deliver(notification_id: int, *, gateway: SmsGateway | None = None) -> Result:
    """One delivery attempt for one notification; returns what happened."""
    claim = sms.claim_notification(notification_id)
    if claim is None:
        return "skipped"
    gateway = gateway or get_gateway()
    started = time.monotonic()
    try:
        accepted = gateway.send(to=claim.recipient, message=claim.text)
    except Exception as exc:
        SMS_SEND_SECONDS.observe(time.monotonic() - started)
        permanent = isinstance(exc, PermanentSmsError)
        if not isinstance(exc, PermanentSmsError | TransientSmsError):
            # A bug or an unforeseen library error: retried like a transient one (bounded).
            logger.exception("Unexpected error sending SMS notification %s", notification_id)
        error = str(exc) or type(exc).__name__
        outcome = _with_db_retries(
            lambda: sms.record_failure(claim, error=error, permanent=permanent)
        )
        if outcome.kind == "failed":
            SMS_NOTIFICATIONS.labels(status="failed").inc()
            logger.warning(
                "SMS notification %s failed after attempt %d: %s",
                notification_id,
                claim.attempt,
                error,
            )
            return "failed"
        if outcome.kind == "stale":
            return "stale"
        SMS_NOTIFICATIONS.labels(status="retry").inc()
        logger.info(
            "SMS notification %s attempt %d failed (%s); retrying in %.1fs",
            notification_id,
            claim.attempt,
            error,
            outcome.retry_in,
        )
        _schedule(notification_id, outcome.retry_in)
        return "retry"
    SMS_SEND_SECONDS.observe(time.monotonic() - started)
    recorded = _with_db_retries(
        lambda: sms.record_sent(claim, message_id=accepted.message_id, cost=accepted.cost)
    )
    if recorded:
        SMS_NOTIFICATIONS.labels(status="sent").inc()
        logger.info(
            "SMS notification %s sent (gateway message %s)", notification_id, accepted.message_id
        )
        return "sent"
    return "stale"


def _schedule(notification_id: int, delay_seconds: float) -> None:
    try:
        send_notification.send_with_options(
            args=(notification_id,), delay=max(int(delay_seconds * 1000), 1), **job_options()
        )
    except Exception as exc:  # the row is pending with a due time: the relay re-sends it
        logger.warning(
            "Could not schedule the retry of SMS notification %s (%s); the outbox relay will",
            notification_id,
            exc,
        )


@dramatiq.actor(
    queue_name=QUEUE,
    actor_name="send_sms_notification",
    # Gateway errors are handled above with the outbox's own backoff; Dramatiq's retries only
    # cover unexpected failures such as the database being unreachable at claim time.
    max_retries=5,
    min_backoff=1000,
    max_backoff=30_000,
    time_limit=120_000,
)
def send_notification(notification_id: int) -> Result:
    # The result is the job's `outcome` in its log line (backend.observability.jobs.JobLog).
    return deliver(notification_id)

"""Webhook actor: POST one delivery row, signed (Standard Webhooks), and record the outcome.

The dispatcher publishes `deliver_webhook(row_id)` for every due row. The claim in
`backend.commands.outbox.webhook_deliveries` makes a redelivered or duplicated message do
nothing (the row is delivered, claimed, or not due). A failed attempt schedules the next one in
the row; this actor never enqueues anything. Receivers de-duplicate on `webhook-id`, which is
the same on every retry: delivery is at least once.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Literal

import dramatiq
from django.conf import settings
from django.db import InterfaceError, OperationalError
from standardwebhooks.webhooks import Webhook

import backend.jobs.broker  # noqa: F401 - sets the global broker before the actor binds to it
from backend.commands import webhook_endpoints
from backend.commands.outbox import webhook_deliveries
from backend.integrations.webhooks import DeliveryError, UnsafeUrl, post
from backend.jobs.dispatcher import WEBHOOK_ACTOR, WEBHOOK_QUEUE
from backend.jobs.metrics import WEBHOOK_DELIVERIES, WEBHOOK_DELIVERY_SECONDS
from backend.jobs.recording import with_db_retries
from backend.observability.jobs import set_job_outcome

logger = logging.getLogger(__name__)

Result = Literal["delivered", "retry", "failed", "skipped", "stale"]


def signed_headers(*, secret: str, event_id: str, body: bytes, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers; the timestamp is this attempt's (receivers reject old
    ones), the id the event's."""
    signature = Webhook(secret).sign(msg_id=event_id, timestamp=now, data=body)
    return {
        "Content-Type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def _describe(status: int, body: bytes) -> str:
    text = body[:200].decode("utf-8", "replace").strip()
    hint = " (redirects are not followed)" if 300 <= status < 400 else ""
    return f"HTTP {status}{hint}" + (f": {text}" if text else "")


def deliver(delivery_id: int) -> Result:
    """One attempt for one delivery row; returns what happened."""
    claim = webhook_deliveries.claim_delivery(delivery_id)
    if claim is None:
        return "skipped"
    body = claim.body.encode("utf-8")
    started = time.monotonic()
    gone = False
    try:
        # Stored encrypted (WEBHOOK_SECRET_KEYS); decrypted only for this signature.
        secret = webhook_endpoints.open_secret(claim.secret)
        headers = signed_headers(
            secret=secret, event_id=claim.event_id, body=body, now=datetime.now(UTC)
        )
        answer = post(claim.url, body=body, headers=headers)
    except webhook_endpoints.UnreadableSecret as exc:
        # A key still needed was dropped from WEBHOOK_SECRET_KEYS: retried (bounded by age), so
        # putting the key back delivers the event.
        logger.error("Webhook endpoint %s not signed: %s", claim.endpoint_id, exc)
        error = "not sent: the signing secret cannot be decrypted (WEBHOOK_SECRET_KEYS)"
    except (UnsafeUrl, DeliveryError) as exc:
        error = f"refused: the URL {exc}" if isinstance(exc, UnsafeUrl) else str(exc)
    except Exception as exc:  # a bug or an unforeseen library error: retried, bounded by age
        logger.exception("Unexpected error delivering webhook %s", delivery_id)
        error = f"{type(exc).__name__}: {exc}"
    else:
        if 200 <= answer.status < 300:
            WEBHOOK_DELIVERY_SECONDS.observe(time.monotonic() - started)
            if with_db_retries(
                lambda: webhook_deliveries.record_delivered(claim), what="a webhook"
            ):
                WEBHOOK_DELIVERIES.labels(result="delivered").inc()
                logger.info(
                    "Webhook %s (%s) delivered to endpoint %s",
                    claim.event_id,
                    claim.event_type,
                    claim.endpoint_id,
                )
                return "delivered"
            return "stale"
        gone = answer.status == 410
        error = _describe(answer.status, answer.body)
    WEBHOOK_DELIVERY_SECONDS.observe(time.monotonic() - started)
    outcome = with_db_retries(
        lambda: webhook_deliveries.record_failure(claim, error=error, gone=gone), what="a webhook"
    )
    if outcome.kind == "stale":
        return "stale"
    WEBHOOK_DELIVERIES.labels(result=outcome.kind).inc()
    logger.info(
        "Webhook %s attempt %d to endpoint %s failed (%s)%s",
        claim.event_id,
        claim.attempt,
        claim.endpoint_id,
        error,
        f"; retrying in {outcome.retry_in:.1f}s" if outcome.kind == "retry" else "; given up",
    )
    return outcome.kind


@dramatiq.actor(
    queue_name=WEBHOOK_QUEUE,
    actor_name=WEBHOOK_ACTOR,
    # The delivery row owns retries (backoff) and redelivery (the dispatcher).
    max_retries=0,
    time_limit=int(1000 * float(settings.WEBHOOK_ACTOR_TIME_LIMIT_SECONDS)),
)
def deliver_webhook(delivery_id: int) -> None:
    try:
        outcome = deliver(delivery_id)
    except (OperationalError, InterfaceError) as exc:
        # The row is untouched or still claimed: the dispatcher's sweep publishes it again.
        logger.warning("Webhook delivery %s not attempted, database error: %s", delivery_id, exc)
        outcome = "error"
    set_job_outcome(outcome)

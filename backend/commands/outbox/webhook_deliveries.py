"""The webhook channel of the outbox (`webhook_deliveries`, one row per event and endpoint);
docs/webhooks.md.

Its own policy on top of `core`: an event fans out to one row per enabled endpoint subscribed
to its type, written inside the transaction of the change (a rolled-back change leaves none);
events of one subject reach an endpoint in the order they were written; a 2xx delivers, `410
Gone` or WEBHOOK_DISABLE_AFTER_SECONDS of failing attempts disables the endpoint, and an event
older than that window is given up. One message carries one row.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from backend.commands.batches import delete_in_batches
from backend.commands.models import WebhookDelivery, WebhookEndpoint
from backend.commands.models import WebhookDeliveryStatus as Status
from backend.commands.outbox import core
from backend.commands.outbox.core import FailureOutcome, Publish, StillQueued
from backend.notifications import events
from backend.observability.context import current_request_id
from backend.queries.customers import get_customer
from backend.queries.orders import get_order

logger = logging.getLogger(__name__)


# --- Events (inside the transaction of the change) -----------------------------------------------


def add_deliveries(
    endpoint_ids: list[int],
    *,
    event_id: str,
    event_type: str,
    subject: str,
    body: str,
    now: datetime,
) -> None:
    """One pending row per endpoint for the event; `body` is the JSON exactly as signed."""
    request_id = current_request_id() or ""
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint_id=endpoint_id,
                event_id=event_id,
                event_type=event_type,
                subject=subject,
                body=body,
                request_id=request_id,
                created_at=now,
                updated_at=now,
            )
            for endpoint_id in endpoint_ids
        ]
    )


SUBSCRIBED_SQL = f"""
    ARRAY(SELECT e.id FROM "{WebhookEndpoint._meta.db_table}" e
          WHERE e.enabled AND e.deleted_at IS NULL AND e.events ? %s ORDER BY e.id)
"""  # noqa: S608 - model metadata, not input


def record_event(
    event_type: str,
    *,
    subject: str,
    data: Callable[[], dict[str, Any]] | dict[str, Any],
    endpoint_ids: list[int] | None = None,
) -> int:
    """Write one delivery row per enabled endpoint subscribed to `event_type`; returns how many.

    Precondition: inside the transaction of the change. `data` (or the callable building it, so
    nothing is read when no endpoint listens) is the resource as the API shows it.
    `endpoint_ids`: the subscribed endpoints when the caller selected them already, in that
    transaction (with `SUBSCRIBED_SQL`); else one query finds them."""
    assert event_type in events.EVENT_TYPES, event_type
    if endpoint_ids is None:
        endpoint_ids = [
            pk
            for pk, types in WebhookEndpoint.objects.filter(
                enabled=True, deleted_at__isnull=True
            ).values_list("pk", "events")
            if event_type in types
        ]
    if not endpoint_ids:
        return 0
    now = timezone.now()
    body = events.event_body(
        event_type=event_type, occurred_at=now, data=data() if callable(data) else data
    )
    add_deliveries(
        endpoint_ids,
        event_id=events.new_event_id(),
        event_type=event_type,
        subject=subject,
        body=body,
        now=now,
    )
    return len(endpoint_ids)


def record_order_event(event_type: str, order_id: int) -> int:
    """An order event whose `data` is the order's read model row, as updated in this
    transaction (so it carries the status just written)."""

    return record_event(
        event_type, subject=f"order:{order_id}", data=lambda: json.loads(get_order(order_id))
    )


def record_customer_event(event_type: str, customer_id: int) -> int:
    """A customer event with the customer's read model row as written in this transaction."""

    return record_event(
        event_type,
        subject=f"customer:{customer_id}",
        data=lambda: json.loads(get_customer(customer_id)),
    )


# --- Publishing (called by the dispatcher) ------------------------------------------------------


def _earlier_pending(endpoint_id: Any, subject: Any, pk: Any) -> QuerySet[WebhookDelivery]:
    """Older pending events of the subject for the endpoint: while one exists, this one waits."""
    return WebhookDelivery.objects.filter(
        status=Status.PENDING, endpoint_id=endpoint_id, subject=subject, pk__lt=pk
    )


def publish_due(*, publish: Publish, limit: int) -> int:
    """Publish due rows that have no message yet (and no older pending row of their subject);
    returns how many."""
    due = WebhookDelivery.objects.filter(
        core.unclaimed_and_due(timezone.now()), enqueued_at__isnull=True
    ).exclude(
        Exists(_earlier_pending(OuterRef("endpoint_id"), OuterRef("subject"), OuterRef("pk")))
    )
    return core.publish_due(due, publish=publish, limit=limit)


def republish_lost(*, publish: Publish, still_queued: StillQueued, limit: int) -> tuple[int, int]:
    """Re-publish due rows whose message the broker no longer holds; returns (checked, lost)
    (see `core.republish_lost`)."""
    published = WebhookDelivery.objects.filter(core.unclaimed_and_due(timezone.now()))
    return core.republish_lost(
        published, publish=publish, still_queued=still_queued, limit=limit, what="webhook"
    )


def purge_finished(*, stopping: Callable[[], bool] | None = None) -> int:
    """Delivered and given-up rows older than the retention (pending ones are never purged),
    deleted in batches."""
    cutoff = timezone.now() - core.seconds("WEBHOOK_RETENTION_SECONDS")
    return delete_in_batches(
        WebhookDelivery.objects.exclude(status=Status.PENDING).filter(updated_at__lt=cutoff),
        stopping=stopping,
    )


def pending_count() -> int:
    return WebhookDelivery.objects.filter(status=Status.PENDING).count()


# --- Claims and outcomes (called by the webhook actor) ------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Claim:
    delivery_id: int
    endpoint_id: int
    token: uuid.UUID
    url: str
    secret: str  # as stored: encrypted (the actor decrypts it to sign)
    event_id: str
    event_type: str
    body: str
    attempt: int


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1` (WEBHOOK_RETRY_BASE_SECONDS doubling, capped)."""
    return core.retry_delay(
        attempt,
        base=float(settings.WEBHOOK_RETRY_BASE_SECONDS),
        cap=float(settings.WEBHOOK_RETRY_CAP_SECONDS),
    )


def claim_delivery(delivery_id: int) -> Claim | None:
    """Take the row for one attempt, or None when there is nothing to send now (delivered,
    failed, claimed by another worker, not due, or an older event of its subject is pending).
    A row of a disabled or deleted endpoint is marked failed here, unsent."""
    now = timezone.now()
    with transaction.atomic():
        row = core.lock_due(WebhookDelivery, delivery_id, now)
        if row is None:
            return None
        endpoint = WebhookEndpoint.objects.get(pk=row.endpoint_id)
        if endpoint.deleted_at is not None or (
            not endpoint.enabled and row.event_type != events.PING
        ):
            why = "endpoint deleted" if endpoint.deleted_at else "endpoint disabled"
            core.set_status(row, Status.FAILED, now, last_error=why)
            return None
        if _earlier_pending(row.endpoint_id, row.subject, row.pk).exists():
            # Published out of turn (a sweep): publish again once the older one is done.
            WebhookDelivery.objects.filter(pk=row.pk).update(**core.UNPUBLISHED)
            return None
        core.take(row, now, lease=core.seconds("WEBHOOK_CLAIM_LEASE_SECONDS"))
    return Claim(
        delivery_id=row.pk,
        endpoint_id=endpoint.pk,
        token=row.claim_token,
        url=endpoint.url,
        secret=endpoint.secret,
        event_id=row.event_id,
        event_type=row.event_type,
        body=row.body,
        attempt=row.attempts,
    )


def record_delivered(claim: Claim) -> bool:
    """A 2xx: the row is delivered (even if the lease ran out: the receiver has it) and the
    endpoint's run of failures ends. False when the row had already left `pending`."""
    now = timezone.now()
    with transaction.atomic():
        row = WebhookDelivery.objects.select_for_update().get(pk=claim.delivery_id)
        if row.status != Status.PENDING:
            return False
        core.set_status(row, Status.DELIVERED, now, delivered_at=now, last_error="")
        WebhookEndpoint.objects.filter(pk=claim.endpoint_id).update(
            last_attempt_at=now, last_error="", failing_since=None
        )
    return True


def record_failure(claim: Claim, *, error: str, gone: bool = False) -> FailureOutcome:
    """A failed attempt. `gone` (410) disables the endpoint at once; an endpoint whose attempts
    have failed for WEBHOOK_DISABLE_AFTER_SECONDS straight is disabled too, and an event older
    than that is given up. Otherwise the next attempt is scheduled (the dispatcher publishes it
    when due)."""
    now = timezone.now()
    error = error[:2000]
    with transaction.atomic():
        row = core.lock_claimed(WebhookDelivery, claim.delivery_id, claim.token)
        if row is None:
            return core.STALE
        disabled = _note_failure(claim.endpoint_id, error, now, gone=gone)
        window = core.seconds("WEBHOOK_DISABLE_AFTER_SECONDS")
        if disabled or core.budget_spent(since=row.created_at, window=window, now=now):
            core.set_status(row, Status.FAILED, now, last_error=error)
            return core.FAILED
        return core.retry_later(row, now, delay=retry_delay(row.attempts), last_error=error)


def _note_failure(endpoint_id: int, error: str, now: datetime, *, gone: bool) -> bool:
    """Record the failure on the endpoint (shown by the API); True when the endpoint is now
    disabled because of it: 410, or every attempt failed for WEBHOOK_DISABLE_AFTER_SECONDS."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    endpoint.last_attempt_at = now
    endpoint.last_error = error
    endpoint.failing_since = endpoint.failing_since or now
    window = core.seconds("WEBHOOK_DISABLE_AFTER_SECONDS")
    reason = ""
    if gone:
        reason = "the receiver answered 410 Gone"
    elif core.budget_spent(since=endpoint.failing_since, window=window, now=now):
        reason = (
            f"every attempt failed for {window.total_seconds() / 3600:g} hours "
            f"(since {events.timestamp(endpoint.failing_since)}); last error: {error}"
        )[:500]
    if reason and endpoint.enabled:
        endpoint.enabled = False
        endpoint.disabled_reason = reason
        logger.warning("Webhook endpoint %s disabled: %s", endpoint.pk, reason)
    endpoint.save(
        update_fields=[
            "last_attempt_at",
            "last_error",
            "failing_since",
            "enabled",
            "disabled_reason",
        ]
    )
    return bool(reason)

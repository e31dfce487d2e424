"""Webhooks on the write side: endpoints, event rows (the outbox), and every state change of a
delivery, each in a short transaction (docs/webhooks.md).

Life of a delivery row (mirrors the SMS outbox in `backend.commands.outbox`):
    pending --publish--> (enqueued_at) --claim--> (lease, attempt counted) --2xx--> delivered
       ^                                                 |
       +---- failure: next_attempt_at later, ------------+--410 / 3 days failing--> failed
             enqueued_at cleared (publish again)               (the endpoint is disabled)

Events are written by `record_event` inside the transaction of the change, one row per enabled
endpoint subscribed to the type: a rolled-back change leaves none, a committed one cannot lose
its rows. Only the dispatcher talks to the broker (it passes a `publish` callable in).
"""

from __future__ import annotations

import base64
import logging
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from backend.commands import publishing
from backend.commands.models import WebhookDelivery, WebhookEndpoint
from backend.commands.models import WebhookDeliveryStatus as Status
from backend.commands.publishing import (  # noqa: F401 - PublishError: what publish_due raises
    Publish,
    PublishError,
    StillQueued,
)
from backend.errors import InvalidField, NotFound
from backend.integrations.webhooks import UnsafeUrl, check_url
from backend.notifications import events
from backend.observability.context import current_request_id
from backend.queries.customers import get_customer
from backend.queries.orders import get_order

logger = logging.getLogger(__name__)


def _seconds(name: str) -> timedelta:
    return timedelta(seconds=float(getattr(settings, name)))


# --- Endpoints ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CreateWebhookEndpoint:
    url: str
    events: list[str]
    description: str = ""


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (Standard Webhooks' secret format)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@transaction.atomic(durable=True)
def create_webhook_endpoint(cmd: CreateWebhookEndpoint) -> int:
    """Precondition: `events` are known types (the API validates). The URL is checked against
    the SSRF rules here, and again before every connection."""
    try:
        check_url(cmd.url)
    except UnsafeUrl as exc:
        raise InvalidField("url", f"The URL {exc}.") from None
    endpoint = WebhookEndpoint.objects.create(
        url=cmd.url,
        events=list(dict.fromkeys(cmd.events)),
        description=cmd.description,
        secret=new_secret(),
        created_at=timezone.now(),
    )
    return endpoint.pk


def _live(endpoint_id: int) -> WebhookEndpoint:
    endpoint = (
        WebhookEndpoint.objects.select_for_update()
        .filter(pk=endpoint_id, deleted_at__isnull=True)
        .first()
    )
    if endpoint is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} does not exist.")
    return endpoint


@transaction.atomic(durable=True)
def delete_webhook_endpoint(endpoint_id: int) -> None:
    """Marks it deleted; its pending events are dropped when the worker reaches them."""
    endpoint = _live(endpoint_id)
    endpoint.deleted_at = timezone.now()
    endpoint.enabled = False
    endpoint.save(update_fields=["deleted_at", "enabled"])


def get_secret(endpoint_id: int) -> str:
    """The signing secret, for the create response only (it is never shown again)."""
    return WebhookEndpoint.objects.values_list("secret", flat=True).get(pk=endpoint_id)


@transaction.atomic(durable=True)
def ping_webhook_endpoint(endpoint_id: int) -> str:
    """Queue a `webhook.ping` event to this endpoint (enabled or not: a ping after fixing the
    receiver shows whether it works). Returns the event id."""
    endpoint = _live(endpoint_id)
    now = timezone.now()
    event_id = events.new_event_id()
    body = events.event_body(
        event_type=events.PING,
        occurred_at=now,
        data={"endpoint_id": endpoint.pk, "url": endpoint.url},
    )
    _write_rows([endpoint.pk], event_id, events.PING, f"endpoint:{endpoint.pk}", body, now)
    return event_id


# --- Events (inside the transaction of the change) -----------------------------------------------


def _write_rows(
    endpoint_ids: list[int], event_id: str, event_type: str, subject: str, body: str, now: datetime
) -> None:
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


def record_event(
    event_type: str, *, subject: str, data: Callable[[], dict[str, Any]] | dict[str, Any]
) -> int:
    """Write one delivery row per enabled endpoint subscribed to `event_type`; returns how many.

    Precondition: inside the transaction of the change. `data` (or the callable building it, so
    nothing is read when no endpoint listens) is the resource as the API shows it. One query
    when nothing subscribes, two otherwise."""
    assert event_type in events.EVENT_TYPES, event_type
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
    _write_rows(endpoint_ids, events.new_event_id(), event_type, subject, body, now)
    return len(endpoint_ids)


def record_order_event(event_type: str, order_id: int) -> int:
    """An order event whose `data` is the order's read model row, as updated in this
    transaction (so it carries the status just written)."""

    return record_event(
        event_type, subject=f"order:{order_id}", data=lambda: get_order(order_id).data()
    )


def record_customer_event(event_type: str, customer_id: int) -> int:
    """A customer event with the customer's read model row as written in this transaction."""

    return record_event(
        event_type, subject=f"customer:{customer_id}", data=lambda: get_customer(customer_id).data()
    )


# --- Publishing (called by the dispatcher) ------------------------------------------------------


def _earlier_pending() -> Exists:
    """An older pending event of the same subject for the same endpoint: this one waits."""
    return Exists(
        WebhookDelivery.objects.filter(
            status=Status.PENDING,
            endpoint_id=OuterRef("endpoint_id"),
            subject=OuterRef("subject"),
            pk__lt=OuterRef("pk"),
        )
    )


def publish_due(*, publish: Publish, limit: int) -> int:
    """Publish due rows that have no message yet (and no older pending row of their subject);
    returns how many. Several dispatchers share the rows (SKIP LOCKED)."""
    due = WebhookDelivery.objects.filter(
        publishing.unclaimed_and_due(timezone.now()), enqueued_at__isnull=True
    ).exclude(_earlier_pending())
    return publishing.publish_due(due, publish=publish, limit=limit)


def republish_lost(*, publish: Publish, still_queued: StillQueued, limit: int) -> tuple[int, int]:
    """As `outbox.republish_lost`: rows published more than the grace ago and still due are
    published again only when the broker no longer holds their message."""
    published = WebhookDelivery.objects.filter(publishing.unclaimed_and_due(timezone.now()))
    return publishing.republish_lost(
        published, publish=publish, still_queued=still_queued, limit=limit, what="webhook"
    )


def purge_finished() -> int:
    """Delivered and given-up rows older than the retention (pending ones are never purged)."""
    cutoff = timezone.now() - _seconds("WEBHOOK_RETENTION_SECONDS")
    deleted, _ = (
        WebhookDelivery.objects.exclude(status=Status.PENDING)
        .filter(updated_at__lt=cutoff)
        .delete()
    )
    return deleted


def pending_count() -> int:
    return WebhookDelivery.objects.filter(status=Status.PENDING).count()


# --- Claims and outcomes (called by the webhook actor) ------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Claim:
    delivery_id: int
    endpoint_id: int
    token: uuid.UUID
    url: str
    secret: str
    event_id: str
    event_type: str
    body: str
    attempt: int


@dataclass(frozen=True, kw_only=True)
class FailureOutcome:
    """`retry` in `retry_in` s, `failed` for good (the endpoint was disabled or the event is too
    old), or `stale` (the claim was lost)."""

    kind: Literal["retry", "failed", "stale"]
    retry_in: float = 0.0


def _finish(row: WebhookDelivery, status: Status, now: datetime, **fields: object) -> None:
    row.status = status
    row.updated_at = now
    row.claimed_until = None
    row.claim_token = None
    for name, value in fields.items():
        setattr(row, name, value)
    row.save(update_fields=["status", "updated_at", "claimed_until", "claim_token", *fields])


def claim_delivery(delivery_id: int) -> Claim | None:
    """Take the row for one attempt, or None when there is nothing to send now (delivered,
    failed, claimed by another worker, not due, or an older event of its subject is pending).
    A row of a disabled or deleted endpoint is marked failed here, unsent."""
    now = timezone.now()
    with transaction.atomic():
        row = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        if row is None or row.status != Status.PENDING:
            return None
        if row.claimed_until is not None and row.claimed_until > now:
            return None
        if row.next_attempt_at is not None and row.next_attempt_at > now + _seconds(
            "SMS_CLOCK_SKEW_SECONDS"
        ):
            return None
        endpoint = WebhookEndpoint.objects.get(pk=row.endpoint_id)
        if endpoint.deleted_at is not None or (
            not endpoint.enabled and row.event_type != events.PING
        ):
            why = "endpoint deleted" if endpoint.deleted_at else "endpoint disabled"
            _finish(row, Status.FAILED, now, last_error=why)
            return None
        if WebhookDelivery.objects.filter(
            status=Status.PENDING,
            endpoint_id=row.endpoint_id,
            subject=row.subject,
            pk__lt=row.pk,
        ).exists():
            # Published out of turn (a sweep): publish again once the older one is done.
            row.enqueued_at = None
            row.broker_message_id = ""
            row.save(update_fields=["enqueued_at", "broker_message_id"])
            return None
        row.attempts += 1
        row.claimed_until = now + _seconds("WEBHOOK_CLAIM_LEASE_SECONDS")
        row.claim_token = uuid.uuid4()
        row.updated_at = now
        row.save(update_fields=["attempts", "claimed_until", "claim_token", "updated_at"])
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
        _finish(row, Status.DELIVERED, now, delivered_at=now, last_error="")
        WebhookEndpoint.objects.filter(pk=claim.endpoint_id).update(
            last_attempt_at=now, last_error="", failing_since=None
        )
    return True


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: exponential from the base, capped, +-20 % jitter."""
    cap = float(settings.WEBHOOK_RETRY_CAP_SECONDS)
    delay = min(cap, float(settings.WEBHOOK_RETRY_BASE_SECONDS) * 2 ** (attempt - 1))
    return min(cap, delay * random.uniform(0.8, 1.2))  # noqa: S311 - not crypto


def record_failure(claim: Claim, *, error: str, gone: bool = False) -> FailureOutcome:
    """A failed attempt. `gone` (410) disables the endpoint at once; an endpoint whose attempts
    have failed for WEBHOOK_DISABLE_AFTER_SECONDS straight is disabled too. Otherwise the next
    attempt is scheduled (the dispatcher publishes it when due)."""
    now = timezone.now()
    error = error[:2000]
    with transaction.atomic():
        row = WebhookDelivery.objects.select_for_update().get(pk=claim.delivery_id)
        if row.status != Status.PENDING or row.claim_token != claim.token:
            return FailureOutcome(kind="stale")
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=claim.endpoint_id)
        endpoint.last_attempt_at = now
        endpoint.last_error = error
        endpoint.failing_since = endpoint.failing_since or now
        limit = _seconds("WEBHOOK_DISABLE_AFTER_SECONDS")
        reason = ""
        if gone:
            reason = "the receiver answered 410 Gone"
        elif now - endpoint.failing_since >= limit:
            reason = (
                f"every attempt failed for {limit.total_seconds() / 3600:g} hours "
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
        if reason or now - row.created_at >= limit:
            _finish(row, Status.FAILED, now, last_error=error)
            return FailureOutcome(kind="failed")
        delay = retry_delay(row.attempts)
        row.last_error = error
        row.next_attempt_at = now + timedelta(seconds=delay)
        row.claimed_until = None
        row.claim_token = None
        row.enqueued_at = None  # the next attempt needs a message of its own
        row.broker_message_id = ""
        row.updated_at = now
        row.save(
            update_fields=[
                "last_error",
                "next_attempt_at",
                "claimed_until",
                "claim_token",
                "enqueued_at",
                "broker_message_id",
                "updated_at",
            ]
        )
    return FailureOutcome(kind="retry", retry_in=delay)

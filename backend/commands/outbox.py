"""The SMS outbox: every state change of an outbox row, each in its own short transaction.

Life of a row (docs/sms.md has the full story and a diagram):
    pending --publish--> (enqueued_at) --claim--> (lease, attempt counted) --accepted--> sent
       ^                                                 |                                |
       +------ transient: next_attempt_at later, --------+                    report: delivered
               enqueued_at cleared (publish again)       +--permanent / budget--> failed   | failed

Only the dispatcher (`backend.jobs.dispatcher`) talks to the broker; it calls `publish_due` and
`republish_lost` with a `publish` callable, so this module never imports the broker. Every
change of `status` updates the order read model in the same transaction.
"""

from __future__ import annotations

import logging
import random
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from backend import projections
from backend.commands import publishing, webhooks
from backend.commands.models import EarlyDeliveryReport, SmsNotification, SmsStatus
from backend.commands.publishing import (  # noqa: F401 - PublishError: what publish_due raises
    Publish,
    PublishError,
    StillQueued,
)
from backend.errors import SmsNotFailed
from backend.integrations.africastalking import ReportOutcome, classify_report_status
from backend.notifications.sms_text import compose_message
from backend.observability.context import current_request_id

logger = logging.getLogger(__name__)


def _seconds(name: str) -> timedelta:
    return timedelta(seconds=float(getattr(settings, name)))


# --- Writing the row (inside the order's transaction) -------------------------------------------


def order_sms_text(*, customer_name: str, order_id: int, item: str, amount: Decimal) -> str:
    return compose_message(
        customer_name=customer_name, order_id=order_id, item=item, amount_text=f"{amount:.2f}"
    )


def add_sms(*, order_id: int, recipient: str, text: str) -> str:
    """Record the order's SMS; returns its status for the read model.

    Precondition: runs inside the transaction that created the order. The dispatcher is woken
    by a NOTIFY that PostgreSQL sends when that transaction commits (trigger in migration 0003);
    nothing here touches the broker. (`backend.commands.orders` writes the same row in SQL.)"""
    now = timezone.now()
    row = SmsNotification.objects.create(
        order_id=order_id,
        recipient=recipient,
        request_id=current_request_id() or "",
        text=text,
        created_at=now,
        updated_at=now,
    )
    return row.status


# --- Publishing (called by the dispatcher) ------------------------------------------------------


def sms_per_message(rows: int, waiting: int = 0) -> int:
    """Rows per message when `rows` are published at once and `waiting` messages already wait
    in the broker: the worker threads that are free (SMS_BATCH_SPREAD, less what waits) get one
    message each, one row each when rows are few; once messages queue up, messages grow (to
    SMS_BATCH_MAX), so a backlog is served with one claim statement and one broker round trip
    for many SMS. A lone order on a quiet system still gets a message of its own."""
    free = max(1, int(settings.SMS_BATCH_SPREAD) - max(0, waiting))
    return max(1, min(int(settings.SMS_BATCH_MAX), -(-rows // free)))


def publish_due(*, publish: Publish, limit: int, waiting: int = 0) -> int:
    """Publish due rows that have no message yet; returns how many. `publish` enqueues one
    message for a group of rows and returns its broker id; `waiting` is how many SMS messages
    the broker holds already (see `sms_per_message`). Several dispatchers share the rows (SKIP
    LOCKED)."""
    due = SmsNotification.objects.filter(
        publishing.unclaimed_and_due(timezone.now()), enqueued_at__isnull=True
    )
    return publishing.publish_due(
        due, publish=publish, limit=limit, group_size=lambda rows: sms_per_message(rows, waiting)
    )


def republish_lost(*, publish: Publish, still_queued: StillQueued, limit: int) -> tuple[int, int]:
    """Re-publish due rows whose message the broker no longer holds; returns (checked, lost)
    (see `backend.commands.publishing.republish_lost`)."""
    published = SmsNotification.objects.filter(publishing.unclaimed_and_due(timezone.now()))
    return publishing.republish_lost(
        published,
        publish=publish,
        still_queued=still_queued,
        limit=limit,
        what="SMS",
        group_size=sms_per_message,
    )


# --- Claims and outcomes (called by the SMS actor) ----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Claim:
    notification_id: int
    order_id: int
    token: uuid.UUID
    recipient: str
    text: str
    attempt: int
    request_id: str = ""


@dataclass(frozen=True, kw_only=True)
class FailureOutcome:
    """What became of a failed attempt: `retry_in` seconds, `failed` for good, or `stale` (the
    claim was lost, someone else owns the row now)."""

    kind: Literal["retry", "failed", "stale"]
    retry_in: float = 0.0


def _set_status(row: SmsNotification, status: SmsStatus, now: datetime, **fields: object) -> None:
    """The one place a row's status changes: the row and the order's read model together."""
    row.status = status
    row.updated_at = now
    for name, value in fields.items():
        setattr(row, name, value)
    row.save(update_fields=["status", "updated_at", *fields])
    projections.set_sms_status(row.order_id, status.value, row.error_reason)
    # Last: the event carries the order's read model as updated above.
    webhooks.record_order_event("order.sms_status_changed", row.order_id)


def _released() -> dict[str, object]:
    return {"claimed_until": None, "claim_token": None, "next_attempt_at": None}


def _budget_spent(row: SmsNotification, now: datetime, *, next_delay: float = 0.0) -> bool:
    if row.attempts >= int(settings.SMS_MAX_ATTEMPTS):
        return True
    first = row.first_attempt_at or now
    return now + timedelta(seconds=next_delay) - first >= _seconds("SMS_RETRY_WINDOW_SECONDS")


_CLAIM_SQL = """
    UPDATE sms_notifications
    SET attempts = attempts + 1, claimed_until = %(lease_until)s, claim_token = %(token)s,
        first_attempt_at = COALESCE(first_attempt_at, %(now)s), updated_at = %(now)s
    WHERE id = ANY(%(ids)s) AND status = 'pending'
      AND (claimed_until IS NULL OR claimed_until <= %(now)s)
      AND (next_attempt_at IS NULL OR next_attempt_at <= %(due_by)s)
      AND attempts < %(max_attempts)s
      AND (first_attempt_at IS NULL OR first_attempt_at > %(window_start)s)
    RETURNING id, order_id, claim_token, recipient, text, attempts, request_id
"""


def claim_notifications(ids: list[int]) -> list[Claim]:
    """Take every row of `ids` that is due for an attempt, in one statement (PostgreSQL); the
    rest (already sent, held by another worker, not due, budget spent: rare) go through
    `claim_notification`, which also fails a row whose budget ran out. Claims in `ids` order."""
    if connection.vendor != "postgresql":
        claims = [claim_notification(pk) for pk in ids]
        return [claim for claim in claims if claim is not None]
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            {
                "ids": list(ids),
                "now": now,
                "lease_until": now + _seconds("SMS_CLAIM_LEASE_SECONDS"),
                "token": uuid.uuid4(),
                "due_by": now + _seconds("SMS_CLOCK_SKEW_SECONDS"),
                "max_attempts": int(settings.SMS_MAX_ATTEMPTS),
                "window_start": now - _seconds("SMS_RETRY_WINDOW_SECONDS"),
            },
        )
        taken = {
            row[0]: Claim(
                notification_id=row[0],
                order_id=row[1],
                token=row[2],
                recipient=row[3],
                text=row[4],
                attempt=row[5],
                request_id=row[6],
            )
            for row in cursor.fetchall()
        }
    for pk in ids:
        if pk not in taken and (claim := claim_notification(pk)) is not None:
            taken[pk] = claim
    return [taken[pk] for pk in ids if pk in taken]


def claim_notification(notification_id: int) -> Claim | None:
    """Take the row for one attempt, or None when there is nothing to send now (already sent or
    failed, another worker holds it, or its next attempt is not due yet).

    A row whose retry budget is spent without a recorded outcome (workers died mid-send) is
    marked failed here instead of being sent again."""
    now = timezone.now()
    with transaction.atomic():
        row = SmsNotification.objects.select_for_update().filter(pk=notification_id).first()
        if row is None or row.status != SmsStatus.PENDING:
            return None
        if row.claimed_until is not None and row.claimed_until > now:
            return None
        if row.next_attempt_at is not None and row.next_attempt_at > now + _seconds(
            "SMS_CLOCK_SKEW_SECONDS"
        ):
            return None
        if row.attempts and _budget_spent(row, now):
            reason = f"gave up after {row.attempts} attempts; the last one did not report back"
            _set_status(
                row,
                SmsStatus.FAILED,
                now,
                last_error=reason,
                error_reason=row.error_reason or "NoResponse",
                **_released(),
            )
            logger.error("SMS notification %s failed: %s", row.pk, reason)
            return None
        row.attempts += 1
        row.claimed_until = now + _seconds("SMS_CLAIM_LEASE_SECONDS")
        row.claim_token = uuid.uuid4()
        row.first_attempt_at = row.first_attempt_at or now
        row.updated_at = now
        row.save(
            update_fields=[
                "attempts",
                "claimed_until",
                "claim_token",
                "first_attempt_at",
                "updated_at",
            ]
        )
    return Claim(
        notification_id=row.pk,
        order_id=row.order_id,
        token=row.claim_token,
        recipient=row.recipient,
        text=row.text,
        attempt=row.attempts,
        request_id=row.request_id,
    )


def release_claims(claims: list[Claim]) -> int:
    """Give back claims that were never attempted (a batch ran short of time): the attempt is
    not counted and the rows are due at once, for the dispatcher to publish again. Only rows
    still held by these claims change; returns how many."""
    released = 0
    for claim in claims:
        released += SmsNotification.objects.filter(
            pk=claim.notification_id, status=SmsStatus.PENDING, claim_token=claim.token
        ).update(
            attempts=F("attempts") - 1,
            first_attempt_at=Case(
                When(attempts=1, then=Value(None)), default=F("first_attempt_at")
            ),
            enqueued_at=None,
            broker_message_id="",
            updated_at=timezone.now(),
            **_released(),
        )
    return released


def _lock_message_id(message_id: str) -> None:
    """Serialises a send being recorded and a report for the same gateway message id, so an
    early report is either seen by `record_sends` or finds the recorded row: never neither."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [message_id])


_RECORD_SENT_SQL = """
    WITH input AS (
        SELECT * FROM unnest(%(ids)s::bigint[], %(message_ids)s::text[], %(costs)s::text[])
            AS t(id, message_id, cost)
    ), r AS (
        UPDATE sms_notifications s
        SET status = 'sent', updated_at = %(now)s, sent_at = %(now)s, cost = i.cost,
            gateway_message_id = CASE WHEN i.message_id IS NULL OR EXISTS (
                SELECT FROM sms_notifications d WHERE d.gateway_message_id = i.message_id
            ) THEN NULL ELSE i.message_id END,
            last_error = '', error_reason = '',
            claimed_until = NULL, claim_token = NULL, next_attempt_at = NULL
        FROM input i
        WHERE s.id = i.id AND s.status = 'pending'
        RETURNING s.id, s.order_id, s.gateway_message_id
    ), v AS (
        UPDATE order_view SET sms_status = 'sent', sms_error = NULL
        FROM r WHERE order_view.id = r.order_id
    )
    SELECT r.id, r.order_id, r.gateway_message_id,
           EXISTS (SELECT FROM sms_early_reports e WHERE e.gateway_message_id = r.gateway_message_id),
           EXISTS (SELECT FROM webhook_endpoints w WHERE w.enabled AND w.deleted_at IS NULL
                   AND w.events ? 'order.sms_status_changed')
    FROM r
"""


@dataclass(frozen=True, kw_only=True)
class Sent:
    """A send the gateway accepted, waiting to be recorded."""

    claim: Claim
    message_id: str | None
    cost: str


def record_sends(sends: list[Sent]) -> list[bool]:
    """The gateway accepted these sends; one result per send, in one transaction. A send is
    recorded even if its lease ran out meanwhile (the acceptance is a fact); False when the row
    had already left `pending` (a duplicate SMS). A final delivery report that arrived first is
    applied in the same transaction.

    On PostgreSQL: the message ids' advisory locks, then one statement sets the rows `sent` and
    the orders' read model; the rare parts (an early report, a subscribed endpoint, a duplicate)
    take `_set_status`'s way. Elsewhere `_record_sent_orm` records each (the reference)."""
    if connection.vendor != "postgresql":
        return [_record_sent_orm(s.claim, message_id=s.message_id, cost=s.cost) for s in sends]
    if not sends:
        return []
    now = timezone.now()
    with transaction.atomic():
        locked = sorted({s.message_id for s in sends if s.message_id})
        with connection.cursor() as cursor:
            if locked:
                # In hash order, as one report's lock is taken: no two recorders can deadlock.
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(h) FROM "
                    "(SELECT DISTINCT hashtext(m) AS h FROM unnest(%s::text[]) AS m) AS x "
                    "ORDER BY h",
                    [locked],
                )
            cursor.execute(
                _RECORD_SENT_SQL,
                {
                    "ids": [s.claim.notification_id for s in sends],
                    "message_ids": [s.message_id for s in sends],
                    "costs": [s.cost[:32] for s in sends],
                    "now": now,
                },
            )
            recorded = {row[0]: row[1:] for row in cursor.fetchall()}
        for send in sends:
            row = recorded.get(send.claim.notification_id)
            if row is None:
                status = SmsNotification.objects.filter(pk=send.claim.notification_id)
                logger.error(
                    "SMS notification %s was accepted again by the gateway (message %s) after "
                    "it was %s",
                    send.claim.notification_id,
                    send.message_id,
                    status.values_list("status", flat=True).first(),
                )
                continue
            order_id, recorded_id, early, subscribed = row
            if subscribed:
                webhooks.record_order_event("order.sms_status_changed", order_id)
            if early and recorded_id:
                notification = SmsNotification.objects.select_for_update().get(
                    pk=send.claim.notification_id
                )
                report = EarlyDeliveryReport.objects.get(gateway_message_id=recorded_id)
                _apply_final_report(
                    notification, SmsStatus(report.status), report.reason, report.error_reason, now
                )
                report.delete()
    return [s.claim.notification_id in recorded for s in sends]


def _record_sent_orm(claim: Claim, *, message_id: str | None, cost: str) -> bool:
    now = timezone.now()
    with transaction.atomic():
        if message_id:
            _lock_message_id(message_id)
        row = SmsNotification.objects.select_for_update().get(pk=claim.notification_id)
        if row.status != SmsStatus.PENDING:
            logger.error(
                "SMS notification %s was accepted again by the gateway (message %s) after it was %s",
                row.pk,
                message_id,
                row.status,
            )
            return False
        if message_id and SmsNotification.objects.filter(gateway_message_id=message_id).exists():
            message_id = None  # never expected; keeps the unique column from failing the record
        _set_status(
            row,
            SmsStatus.SENT,
            now,
            gateway_message_id=message_id,
            cost=cost[:32],
            sent_at=now,
            last_error="",
            error_reason="",
            **_released(),
        )
        early = (
            EarlyDeliveryReport.objects.filter(gateway_message_id=message_id).first()
            if message_id
            else None
        )
        if early is not None:
            _apply_final_report(row, SmsStatus(early.status), early.reason, early.error_reason, now)
            early.delete()
    return True


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: exponential from the base, capped, +-20 % jitter."""
    cap = float(settings.SMS_RETRY_CAP_SECONDS)
    delay = min(cap, float(settings.SMS_RETRY_BASE_SECONDS) * 2 ** (attempt - 1))
    return min(cap, delay * random.uniform(0.8, 1.2))  # noqa: S311 - not crypto


def record_failure(claim: Claim, *, error: str, reason: str, permanent: bool) -> FailureOutcome:
    """A failed attempt: schedule the next one (the dispatcher publishes it when due), or mark
    the row failed (exactly once). Only the holder of the current claim may record it.
    `error` is the detail (kept in `last_error`), `reason` the short word shown as `sms_error`."""
    now = timezone.now()
    with transaction.atomic():
        row = SmsNotification.objects.select_for_update().get(pk=claim.notification_id)
        if row.status != SmsStatus.PENDING or row.claim_token != claim.token:
            return FailureOutcome(kind="stale")
        short_reason = reason[:64]
        delay = retry_delay(row.attempts)
        if permanent or _budget_spent(row, now, next_delay=delay):
            reason = error if permanent else f"{error} (gave up after {row.attempts} attempts)"
            _set_status(
                row,
                SmsStatus.FAILED,
                now,
                last_error=reason[:2000],
                error_reason=short_reason,
                **_released(),
            )
            return FailureOutcome(kind="failed")
        row.last_error = error[:2000]
        row.error_reason = short_reason
        row.next_attempt_at = now + timedelta(seconds=delay)
        row.claimed_until = None
        row.claim_token = None
        row.enqueued_at = None  # the next attempt needs a message of its own
        row.broker_message_id = ""
        row.updated_at = now
        row.save(
            update_fields=[
                "last_error",
                "error_reason",
                "next_attempt_at",
                "claimed_until",
                "claim_token",
                "enqueued_at",
                "broker_message_id",
                "updated_at",
            ]
        )
        projections.set_sms_status(row.order_id, row.status, row.error_reason)
    return FailureOutcome(kind="retry", retry_in=delay)


def resend(order_id: int) -> None:
    """Make a failed notification pending again, as new: a fresh budget of attempts, the same
    text. Precondition: inside the resend command's transaction. Raises SmsNotFailed unless the
    row is `failed`, so concurrent or repeated calls queue at most one new SMS."""
    row = SmsNotification.objects.select_for_update().filter(order_id=order_id).first()
    if row is None or row.status != SmsStatus.FAILED:
        state = row.status if row is not None else "never queued (demo data)"
        raise SmsNotFailed(f"The SMS of order {order_id} is {state}; only a failed one is re-sent.")
    # The earlier gateway id goes: a late report for it must not touch the new attempt.
    _set_status(
        row,
        SmsStatus.PENDING,
        timezone.now(),
        attempts=0,
        first_attempt_at=None,
        gateway_message_id=None,
        error_reason="",
        enqueued_at=None,
        broker_message_id="",
        request_id=current_request_id() or "",
        **_released(),
    )


# --- Delivery reports ---------------------------------------------------------------------------

_REPORT_STATUS = {
    ReportOutcome.DELIVERED: SmsStatus.DELIVERED,
    ReportOutcome.FAILED: SmsStatus.FAILED,
}


def _apply_final_report(
    row: SmsNotification, status: SmsStatus, reason: str, word: str, now: datetime
) -> None:
    extra: dict[str, object] = {}
    if status is SmsStatus.FAILED:
        extra["last_error"] = reason[:2000]
        extra["error_reason"] = word[:64]
    _set_status(row, status, now, **extra)


def _report_word(status: str, failure_reason: str) -> str:
    """`sms_error` of a failed report: AT's `failureReason` (e.g. `UserInBlacklist`) when it is
    one word, else the status (`Rejected`)."""
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", failure_reason):
        return failure_reason
    return status


def apply_delivery_report(*, message_id: str, status: str, failure_reason: str = "") -> bool:
    """Apply one gateway report; True when it changed an order.

    Intermediate statuses and repeats change nothing, and a final status is never overwritten by
    a later report. A final report for a message id not recorded yet is kept, and applied when
    its send is recorded (see `record_sends`); a report for an id never sent expires unused."""
    outcome = classify_report_status(status)
    if outcome is None:
        return False
    new_status = _REPORT_STATUS[outcome]
    reason = f"delivery report: {status}" + (f" ({failure_reason})" if failure_reason else "")
    word = _report_word(status, failure_reason)
    now = timezone.now()
    with transaction.atomic():
        _lock_message_id(message_id)
        row = (
            SmsNotification.objects.select_for_update()
            .filter(gateway_message_id=message_id)
            .first()
        )
        if row is None:
            EarlyDeliveryReport.objects.get_or_create(
                gateway_message_id=message_id,
                defaults={
                    "status": new_status,
                    "reason": reason[:300],
                    "error_reason": word[:64],
                    "received_at": now,
                },
            )
            return False
        if row.status != SmsStatus.SENT:
            return False
        _apply_final_report(row, new_status, reason, word, now)
    return True


# --- Housekeeping -------------------------------------------------------------------------------


def purge_early_reports() -> int:
    """Reports for ids that were never recorded (not ours, or a send lost for good)."""
    cutoff = timezone.now() - _seconds("EARLY_REPORT_RETENTION_SECONDS")
    deleted, _ = EarlyDeliveryReport.objects.filter(received_at__lt=cutoff).delete()
    return deleted


def pending_count() -> int:
    return SmsNotification.objects.filter(status=SmsStatus.PENDING).count()

"""The SMS channel of the outbox (`sms_notifications`, one row per order); docs/sms.md.

Its own policy on top of `core`: rows are claimed and recorded in batches (one message carries
several rows), the budget is SMS_MAX_ATTEMPTS within SMS_RETRY_WINDOW_SECONDS, the gateway's
answer decides `sent` / retry / `failed`, delivery reports move `sent` on (an early one waits
for its send to be recorded), and a failed SMS can be re-sent. Every change of `status` updates
the order's read model and records an `order.sms_status_changed` event in the same transaction.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from backend import projections
from backend.commands.batches import delete_in_batches
from backend.commands.models import EarlyDeliveryReport, SmsNotification, SmsStatus
from backend.commands.outbox import core, webhook_deliveries
from backend.commands.outbox.core import FailureOutcome, Publish, StillQueued
from backend.errors import SmsNotFailed
from backend.integrations.africastalking import ReportOutcome, classify_report_status
from backend.notifications.sms_text import compose_message
from backend.observability.context import current_request_id

logger = logging.getLogger(__name__)


# --- Writing the row (inside the order's transaction) -------------------------------------------


def order_sms_text(*, customer_name: str, order_id: int, item: str, amount: Decimal) -> str:
    return compose_message(
        customer_name=customer_name, order_id=order_id, item=item, amount_text=f"{amount:.2f}"
    )


def add_sms(*, order_id: int, recipient: str, text: str) -> str:
    """Record the order's SMS; returns its status for the read model.

    Precondition: runs inside the transaction that created the order. The dispatcher is woken
    by a NOTIFY that PostgreSQL sends when that transaction commits (trigger in migration 0003);
    nothing here touches the broker."""
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
        request_id=current_request_id() or "",
        **core.UNPUBLISHED,
    )


def _set_status(row: SmsNotification, status: SmsStatus, now: datetime, **fields: object) -> None:
    """The one place a row's status changes: the row and the order's read model together."""
    core.set_status(row, status, now, **fields)
    projections.set_sms_status(row.order_id, status.value, row.error_reason)
    # Last: the event carries the order's read model as updated above.
    webhook_deliveries.record_order_event("order.sms_status_changed", row.order_id)


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
    the broker holds already (see `sms_per_message`)."""
    due = SmsNotification.objects.filter(
        core.unclaimed_and_due(timezone.now()), enqueued_at__isnull=True
    )
    return core.publish_due(
        due, publish=publish, limit=limit, group_size=lambda rows: sms_per_message(rows, waiting)
    )


def republish_lost(*, publish: Publish, still_queued: StillQueued, limit: int) -> tuple[int, int]:
    """Re-publish due rows whose message the broker no longer holds; returns (checked, lost)
    (see `core.republish_lost`)."""
    published = SmsNotification.objects.filter(core.unclaimed_and_due(timezone.now()))
    return core.republish_lost(
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


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1` (SMS_RETRY_BASE_SECONDS doubling, capped)."""
    return core.retry_delay(
        attempt,
        base=float(settings.SMS_RETRY_BASE_SECONDS),
        cap=float(settings.SMS_RETRY_CAP_SECONDS),
    )


def _budget_spent(row: SmsNotification, now: datetime, *, next_delay: float = 0.0) -> bool:
    return core.budget_spent(
        attempts=row.attempts,
        max_attempts=int(settings.SMS_MAX_ATTEMPTS),
        since=row.first_attempt_at or now,
        window=core.seconds("SMS_RETRY_WINDOW_SECONDS"),
        now=now,
        next_delay=next_delay,
    )


# The claim of `core.take`, for a message's rows at once: `core.unclaimed_and_due` plus a budget
# left, one statement for the whole batch. One token fences every row of it.
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
    """Take every row of `ids` that is due for an attempt, in one statement; returns the claims
    in `ids` order. Rows left out are sent, held by another worker, not due, or out of budget:
    those last (workers died mid-send, so no outcome was recorded) are failed here instead of
    being sent again."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            {
                "ids": list(ids),
                "now": now,
                "lease_until": now + core.seconds("SMS_CLAIM_LEASE_SECONDS"),
                "token": uuid.uuid4(),
                "due_by": now + core.clock_skew(),
                "max_attempts": int(settings.SMS_MAX_ATTEMPTS),
                "window_start": now - core.seconds("SMS_RETRY_WINDOW_SECONDS"),
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
    if len(taken) < len(ids):
        _fail_unanswered([pk for pk in ids if pk not in taken])
    return [taken[pk] for pk in ids if pk in taken]


def claim_notification(notification_id: int) -> Claim | None:
    """Take one row for one attempt, or None when there is nothing to send now."""
    claims = claim_notifications([notification_id])
    return claims[0] if claims else None


def _fail_unanswered(ids: list[int]) -> None:
    """Fail the due rows of `ids` whose budget is spent without a recorded outcome."""
    now = timezone.now()
    with transaction.atomic():
        due = SmsNotification.objects.select_for_update().filter(
            core.unclaimed_and_due(now), pk__in=ids, attempts__gt=0
        )
        for row in due.order_by("pk"):
            if not _budget_spent(row, now):
                continue
            reason = f"gave up after {row.attempts} attempts; the last one did not report back"
            _set_status(
                row,
                SmsStatus.FAILED,
                now,
                last_error=reason,
                error_reason=row.error_reason or "NoResponse",
            )
            logger.error("SMS notification %s failed: %s", row.pk, reason)


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
            updated_at=timezone.now(),
            **core.UNPUBLISHED,
            **core.RELEASED,
        )
    return released


def _lock_message_id(message_id: str) -> None:
    """Serialises a send being recorded and a report for the same gateway message id, so an
    early report is either seen by `record_sends` or finds the recorded row: never neither."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [message_id])


# Sets the accepted rows `sent` (a gateway id already recorded elsewhere is dropped rather than
# failing the unique column) and their orders' read model, in one statement for the batch; it
# returns what the rare follow-ups need: an early report to apply, an endpoint to notify.
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
    applied in the same transaction."""
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
                webhook_deliveries.record_order_event("order.sms_status_changed", order_id)
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


def record_failure(claim: Claim, *, error: str, reason: str, permanent: bool) -> FailureOutcome:
    """A failed attempt: schedule the next one (the dispatcher publishes it when due), or mark
    the row failed (exactly once). Only the holder of the current claim may record it.
    `error` is the detail (kept in `last_error`), `reason` the short word shown as `sms_error`."""
    now = timezone.now()
    with transaction.atomic():
        row = core.lock_claimed(SmsNotification, claim.notification_id, claim.token)
        if row is None:
            return core.STALE
        short_reason = reason[:64]
        delay = retry_delay(row.attempts)
        if permanent or _budget_spent(row, now, next_delay=delay):
            reason = error if permanent else f"{error} (gave up after {row.attempts} attempts)"
            _set_status(
                row, SmsStatus.FAILED, now, last_error=reason[:2000], error_reason=short_reason
            )
            return core.FAILED
        outcome = core.retry_later(
            row, now, delay=delay, last_error=error[:2000], error_reason=short_reason
        )
        projections.set_sms_status(row.order_id, row.status, row.error_reason)
    return outcome


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


def purge_early_reports(*, stopping: Callable[[], bool] | None = None) -> int:
    """Reports for ids that were never recorded (not ours, or a send lost for good), deleted
    in batches."""
    cutoff = timezone.now() - core.seconds("EARLY_REPORT_RETENTION_SECONDS")
    return delete_in_batches(
        EarlyDeliveryReport.objects.filter(received_at__lt=cutoff), stopping=stopping
    )

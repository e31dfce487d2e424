"""SMS notification commands: the transactional outbox and every state change of its rows.

Life of a row (docs/sms.md has the full story):
    pending --claim--> (lease held, attempt counted) --accepted--> sent --report--> delivered|failed
                                                      --transient--> pending (next_attempt_at later)
                                                      --permanent / budget spent--> failed
Each change of `status` updates the order read model in the same transaction. Workers claim a
row under a row lock before sending, so two workers never send the same row at the same time;
the claim is a lease (`claimed_until`), so a worker that dies mid-send blocks the row only until
the lease ends, after which a redelivered message or the relay sweep tries again.
"""

from __future__ import annotations

import logging
import random
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Literal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backend.commands.models import Customer, Order, SmsNotification, SmsStatus
from backend.integrations.africastalking import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    fits_one_segment,
    is_gsm7,
)
from backend.observability.jobs import job_options
from backend.queries import projections

logger = logging.getLogger(__name__)

# Contract section 7: first retry within 5 s, backoff capped at 5 min, at most 10 attempts
# within 1 h. The base is a setting only so tests need not wait.
MAX_ATTEMPTS = 10
RETRY_WINDOW = timedelta(hours=1)
RETRY_BASE_SECONDS = 2.0
RETRY_CAP_SECONDS = 300.0
# Longer than the gateway call can take (3.05 s connect + 10 s read) plus database time.
CLAIM_LEASE_SECONDS = 45.0
# The relay re-enqueues a row once its due time is this far in the past (its message was lost).
RELAY_GRACE_SECONDS = 30.0
# Tolerated clock difference between the host that scheduled a retry and the one running it.
CLOCK_SKEW = timedelta(seconds=2)


def _knob(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


# --- Message text ------------------------------------------------------------------------------

# Typographic characters outside GSM-7 that have a plain equivalent: keeping the message GSM-7
# keeps it at 160 characters instead of 70.
_PLAIN = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2212": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\t": " ",
    }
)
_TEMPLATES: tuple[tuple[str, int], ...] = (
    # (template, shortest item worth keeping in it)
    ("Hi {name}, we received your order #{order_id}: {item}, KES {amount}. Thank you!", 16),
    ("Hi {name}, order #{order_id} received: {item}, KES {amount}.", 10),
    ("Order #{order_id} received: {item}, KES {amount}.", 1),
)


def _gsm_friendly(text: str) -> str:
    """Single-spaced, typographic marks made plain, accents dropped where GSM-7 lacks them."""
    text = " ".join(text.translate(_PLAIN).split())
    out = []
    for ch in text:
        if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and is_gsm7(base) else ch)
    return "".join(out)


def _shorten(text: str, length: int, ellipsis: str) -> str:
    if len(text) <= length:
        return text
    return text[: max(length - len(ellipsis), 1)].rstrip() + ellipsis


def compose_message(*, customer_name: str, order_id: int, item: str, amount_text: str) -> str:
    """The order SMS, always one segment: 160 GSM-7 units, or 70 UCS-2 units when the name or
    item needs characters GSM-7 lacks. Long items are shortened first, then the greeting; the
    order id and the amount are always kept whole."""
    name = _gsm_friendly(customer_name)
    item = _gsm_friendly(item) or "-"
    ellipsis = "..." if is_gsm7(name + item) else "\u2026"
    first_name = _shorten(name.split(" ")[0], 20, ellipsis) if name else ""
    for template, min_item in _TEMPLATES:
        names = dict.fromkeys((name, first_name)) if name and "{name}" in template else {"": None}
        for who in names:
            for length in range(len(item), min(min_item, len(item)) - 1, -1):
                text = template.format(
                    name=who,
                    order_id=order_id,
                    item=_shorten(item, length, ellipsis),
                    amount=amount_text,
                )
                if fits_one_segment(text):
                    return text
    # Unreachable for real ids and amounts (the last template fits with a 1-character item).
    return f"Order #{order_id}: KES {amount_text}"


# --- Outbox ------------------------------------------------------------------------------------


def add_to_outbox(*, order: Order, customer: Customer) -> SmsNotification:
    """Precondition: runs inside the transaction that created `order`."""
    now = timezone.now()
    return SmsNotification.objects.create(
        order=order,
        recipient=customer.phone_number,
        text=compose_message(
            customer_name=customer.name,
            order_id=order.pk,
            item=order.item,
            amount_text=f"{order.amount:.2f}",
        ),
        created_at=now,
        updated_at=now,
    )


def _nudge(notification_id: int, *, options: dict[str, str] | None = None) -> None:
    from backend.jobs.sms import send_notification  # the broker is only needed after commit

    try:
        send_notification.send_with_options(args=(notification_id,), **(options or {}))
    except Exception as exc:  # any broker failure: the row stays pending and the relay sends it
        logger.warning(
            "SMS notification %s not handed to the broker (%s: %s); the outbox relay will send it",
            notification_id,
            type(exc).__name__,
            exc,
        )


def enqueue_after_commit(notification_id: int) -> None:
    """Hand the notification to the worker once the surrounding transaction commits.

    A broker error at that moment is logged and never reaches the caller: the committed outbox
    row is the source of truth and the relay sweep picks it up. Outside a transaction the
    message is sent at once (Django runs on_commit callbacks immediately in autocommit).
    The message carries the current request id, so the job's log lines can be matched to it."""
    transaction.on_commit(partial(_nudge, notification_id, options=job_options()), robust=True)


# --- Claims and outcomes (called by the worker) -------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Claim:
    notification_id: int
    order_id: int
    token: uuid.UUID
    recipient: str
    text: str
    attempt: int


@dataclass(frozen=True, kw_only=True)
class FailureOutcome:
    """What became of a failed attempt: `retry_in` seconds, `failed` for good, or `stale` (the
    claim was lost, someone else owns the row now)."""

    kind: Literal["retry", "failed", "stale"]
    retry_in: float = 0.0


def _set_status(row: SmsNotification, status: SmsStatus, now: datetime, **fields: object) -> None:
    row.status = status
    row.updated_at = now
    for name, value in fields.items():
        setattr(row, name, value)
    row.save(update_fields=["status", "updated_at", *fields])
    projections.set_sms_status(row.order_id, status.value)


def _release_fields() -> dict[str, object]:
    return {"claimed_until": None, "claim_token": None, "next_attempt_at": None}


def claim_notification(notification_id: int) -> Claim | None:
    """Take the row for one attempt, or None when there is nothing to send now (already sent or
    failed, another worker holds it, or its next attempt is not due yet).

    A row whose retry budget is spent without a recorded outcome (workers died mid-send) is
    marked failed here instead of being sent again."""
    now = timezone.now()
    lease = timedelta(seconds=_knob("SMS_CLAIM_LEASE_SECONDS", CLAIM_LEASE_SECONDS))
    with transaction.atomic():
        row = SmsNotification.objects.select_for_update().filter(pk=notification_id).first()
        if row is None or row.status != SmsStatus.PENDING:
            return None
        if row.claimed_until is not None and row.claimed_until > now:
            return None
        if row.next_attempt_at is not None and row.next_attempt_at > now + CLOCK_SKEW:
            return None
        if row.attempts >= MAX_ATTEMPTS or (
            row.first_attempt_at is not None and now - row.first_attempt_at >= RETRY_WINDOW
        ):
            reason = f"gave up after {row.attempts} attempts; the last one did not report back"
            _set_status(row, SmsStatus.FAILED, now, last_error=reason, **_release_fields())
            logger.error("SMS notification %s failed: %s", row.pk, reason)
            return None
        row.attempts += 1
        row.claimed_until = now + lease
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
    )


def record_sent(claim: Claim, *, message_id: str | None, cost: str) -> bool:
    """The gateway accepted the message. Recorded even if the lease ran out meanwhile (the
    acceptance is a fact); False when the row had already left `pending` (a duplicate SMS)."""
    now = timezone.now()
    with transaction.atomic():
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
            **_release_fields(),
        )
    return True


def retry_delay(attempt: int) -> float:
    """Seconds before attempt `attempt + 1`: exponential from the base, capped, +-20 % jitter."""
    base = _knob("SMS_RETRY_BASE_SECONDS", RETRY_BASE_SECONDS)
    delay = min(RETRY_CAP_SECONDS, base * 2 ** (attempt - 1))
    return min(RETRY_CAP_SECONDS, delay * random.uniform(0.8, 1.2))  # noqa: S311 - not crypto


def record_failure(claim: Claim, *, error: str, permanent: bool) -> FailureOutcome:
    """A failed attempt: schedule the next one, or mark the row failed (exactly once)."""
    now = timezone.now()
    with transaction.atomic():
        row = SmsNotification.objects.select_for_update().get(pk=claim.notification_id)
        if row.status != SmsStatus.PENDING or row.claim_token != claim.token:
            return FailureOutcome(kind="stale")
        delay = retry_delay(row.attempts)
        first = row.first_attempt_at or now
        out_of_budget = (
            row.attempts >= MAX_ATTEMPTS or now + timedelta(seconds=delay) - first > RETRY_WINDOW
        )
        if permanent or out_of_budget:
            reason = error if permanent else f"{error} (gave up after {row.attempts} attempts)"
            _set_status(row, SmsStatus.FAILED, now, last_error=reason[:2000], **_release_fields())
            return FailureOutcome(kind="failed")
        row.last_error = error[:2000]
        row.next_attempt_at = now + timedelta(seconds=delay)
        row.claimed_until = None
        row.claim_token = None
        row.updated_at = now
        row.save(
            update_fields=[
                "last_error",
                "next_attempt_at",
                "claimed_until",
                "claim_token",
                "updated_at",
            ]
        )
    return FailureOutcome(kind="retry", retry_in=delay)


def relay_pending(*, enqueue: Callable[[int], None], limit: int = 100) -> int:
    """Re-enqueue pending rows whose message is evidently lost: due for longer than the grace
    period and not held by a live claim. Returns how many were handed over.

    Safe with several relays at once: `skip_locked` splits the rows between concurrent sweeps,
    and the rows' due time is reset so a later sweep leaves them alone for another grace
    period. The enqueue happens inside the transaction, so a broker error rolls the reset back
    and the next sweep tries again. A duplicate message is harmless: only one claim succeeds."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=_knob("SMS_RELAY_GRACE_SECONDS", RELAY_GRACE_SECONDS))
    with transaction.atomic():
        ids = list(
            SmsNotification.objects.select_for_update(skip_locked=True)
            .filter(status=SmsStatus.PENDING)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
            .filter(
                Q(next_attempt_at__lte=cutoff)
                | Q(next_attempt_at__isnull=True, created_at__lte=cutoff)
            )
            .order_by("created_at")
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return 0
        SmsNotification.objects.filter(pk__in=ids).update(next_attempt_at=now, updated_at=now)
        for notification_id in ids:
            enqueue(notification_id)
    logger.info("Outbox relay re-enqueued %d pending SMS notification(s)", len(ids))
    return len(ids)


# --- Delivery reports --------------------------------------------------------------------------

# Africa's Talking delivery-report statuses. Final ones move the row; the rest leave it `sent`.
DELIVERED_REPORT_STATUSES = frozenset({"Success"})
FAILED_REPORT_STATUSES = frozenset({"Failed", "Rejected", "AbsentSubscriber", "Expired"})


def apply_delivery_report(*, message_id: str, status: str, failure_reason: str = "") -> bool:
    """Apply one report; True when it changed the row. Unknown ids, intermediate statuses and
    repeats change nothing, and a final status is never overwritten by a later report."""
    if status in DELIVERED_REPORT_STATUSES:
        new_status = SmsStatus.DELIVERED
    elif status in FAILED_REPORT_STATUSES:
        new_status = SmsStatus.FAILED
    else:
        return False
    now = timezone.now()
    with transaction.atomic():
        row = (
            SmsNotification.objects.select_for_update()
            .filter(gateway_message_id=message_id)
            .first()
        )
        if row is None or row.status != SmsStatus.SENT:
            return False
        extra: dict[str, object] = {}
        if new_status is SmsStatus.FAILED:
            reason = f" ({failure_reason})" if failure_reason else ""
            extra["last_error"] = f"delivery report: {status}{reason}"[:2000]
        _set_status(row, new_status, now, **extra)
    return True

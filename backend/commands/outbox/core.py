"""What every outbox table shares: publishing, the claim lease, backoff, the failure budget and
the end of an attempt. The channels (`sms_notifications`, `webhook_deliveries`) keep only their
own policy: which rows are due, what a claim carries, what an outcome means.

A channel's rows carry `status` (`pending` until final), `attempts`, a claim lease
(`claimed_until`, `claim_token`), the not-before time of the next attempt (`next_attempt_at`)
and the publishing bookkeeping (`enqueued_at`, `broker_message_id`, `request_id`):

    pending --publish--> (enqueued_at) --claim--> (lease, attempt counted) --success--> final
       ^                                                 |
       +---- failure: next_attempt_at later, ------------+--permanent / budget spent--> failed
             enqueued_at cleared (publish again)

The dispatcher passes a `publish(row_ids, request_id) -> broker message id` callable in, so no
code here imports the broker. Rows are published with `FOR UPDATE SKIP LOCKED`: several
dispatchers share them.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)

Row = TypeVar("Row", bound=models.Model)
Publish = Callable[[list[int], str], str]  # (row ids, request id) -> the message's id in the broker
GroupSize = Callable[[int], int]  # rows to publish -> rows per message
StillQueued = Callable[[list[tuple[str, datetime]]], set[str]]

PENDING = "pending"
# A row whose attempt ended holds no claim; a row with no message is published when due.
RELEASED: dict[str, object] = {"claimed_until": None, "claim_token": None, "next_attempt_at": None}
UNPUBLISHED: dict[str, object] = {"enqueued_at": None, "broker_message_id": ""}


def seconds(name: str) -> timedelta:
    """A duration setting, read at each use (tests shorten them)."""
    return timedelta(seconds=float(getattr(settings, name)))


# --- Due rows and their claims ------------------------------------------------------------------


def unclaimed_and_due(now: datetime) -> Q:
    """Pending rows no live claim holds whose next attempt is due (with the tolerated clock
    difference between the host that scheduled it and this one)."""
    return (
        Q(status=PENDING)
        & (Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + clock_skew()))
    )


def clock_skew() -> timedelta:
    return seconds("SMS_CLOCK_SKEW_SECONDS")


def lock_due(model: type[Row], pk: int, now: datetime) -> Row | None:
    """The row, locked for this transaction, when it is due for an attempt; else None (final,
    held by another worker's lease, or its next attempt lies ahead)."""
    return model.objects.select_for_update().filter(unclaimed_and_due(now), pk=pk).first()


def take(row: models.Model, now: datetime, *, lease: timedelta, **fields: object) -> None:
    """Claim the locked row for one attempt: the attempt is counted, and a fresh token fences
    its outcome while the lease lasts (no other worker can claim the row until then)."""
    _write(
        row,
        now,
        attempts=row.attempts + 1,  # type: ignore[attr-defined]
        claimed_until=now + lease,
        claim_token=uuid.uuid4(),
        **fields,
    )


def lock_claimed(model: type[Row], pk: int, token: uuid.UUID) -> Row | None:
    """The row, locked, while the claim `token` still holds it; None when the claim was lost
    (the row is final, or its lease ran out and another claim took over)."""
    row = model.objects.select_for_update().get(pk=pk)
    if row.status != PENDING or row.claim_token != token:  # type: ignore[attr-defined]
        return None
    return row


# --- The end of an attempt ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FailureOutcome:
    """What became of a failed attempt: `retry` in `retry_in` seconds, `failed` for good, or
    `stale` (the claim was lost: someone else owns the row now, and records its outcome)."""

    kind: Literal["retry", "failed", "stale"]
    retry_in: float = 0.0


STALE = FailureOutcome(kind="stale")
FAILED = FailureOutcome(kind="failed")


def retry_delay(attempt: int, *, base: float, cap: float) -> float:
    """Seconds before attempt `attempt + 1`: exponential from `base`, capped, +-20 % jitter."""
    delay = min(cap, base * 2 ** (attempt - 1))
    return min(cap, delay * random.uniform(0.8, 1.2))  # noqa: S311 - not crypto


def budget_spent(
    *,
    since: datetime,
    window: timedelta,
    now: datetime,
    next_delay: float = 0.0,
    attempts: int = 0,
    max_attempts: int | None = None,
) -> bool:
    """True when no further attempt may be made: `max_attempts` are used up, or the next one
    (`next_delay` s from now) would start `window` or more after `since`."""
    if max_attempts is not None and attempts >= max_attempts:
        return True
    return now + timedelta(seconds=next_delay) - since >= window


def retry_later(
    row: models.Model, now: datetime, *, delay: float, **fields: object
) -> FailureOutcome:
    """Release the locked row's claim and make it due again `delay` s from now, without a
    message: the dispatcher publishes it when it is due."""
    _write(
        row,
        now,
        next_attempt_at=now + timedelta(seconds=delay),
        claimed_until=None,
        claim_token=None,
        **UNPUBLISHED,
        **fields,
    )
    return FailureOutcome(kind="retry", retry_in=delay)


def set_status(row: models.Model, status: str, now: datetime, **fields: object) -> None:
    """Change the locked row's status; any claim and schedule it had end with it."""
    _write(row, now, status=status, **{**RELEASED, **fields})


def _write(row: models.Model, now: datetime, **fields: object) -> None:
    fields["updated_at"] = now
    for name, value in fields.items():
        setattr(row, name, value)
    row.save(update_fields=list(fields))


# --- Publishing (called by the dispatcher) ------------------------------------------------------

_PUBLISHING_FIELDS = ("pk", "enqueued_at", "broker_message_id", "request_id")


class PublishError(Exception):
    """The broker refused a message; the rows published before it are recorded."""

    def __init__(self, published: int, cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.published = published
        self.cause = cause


def one_per_message(rows: int) -> int:
    return 1


def publish_due(
    due: models.QuerySet,
    *,
    publish: Publish,
    limit: int,
    group_size: GroupSize = one_per_message,
) -> int:
    """Publish the rows of `due` (the channel's rows that need a message now); returns how many.
    Raises PublishError at the first broker error, after recording the rows published before."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(_locked(due).order_by("pk")[:limit])
        done, error = _publish_rows(rows, publish, now, group_size)
    if error is not None:
        raise PublishError(done, error)
    return done


def republish_lost(
    published: models.QuerySet,
    *,
    publish: Publish,
    still_queued: StillQueued,
    limit: int,
    what: str,
    group_size: GroupSize = one_per_message,
) -> tuple[int, int]:
    """Re-publish rows of `published` (the channel's unclaimed, due rows) whose message the
    broker no longer has; returns (checked, lost).

    A row published more than the grace ago and still due is either waiting in a long queue or
    its message was lost (broker restarted, message dead-lettered, worker skipped it).
    `still_queued` asks the broker which messages it still holds: those rows are left alone
    (their `enqueued_at` is refreshed, so the next pass checks other rows), so a backlog never
    grows with duplicates. The rest are published again."""
    now = timezone.now()
    cutoff = now - seconds("OUTBOX_REDELIVERY_GRACE_SECONDS")
    with transaction.atomic():
        rows = list(
            _locked(published.filter(enqueued_at__lte=cutoff)).order_by("enqueued_at", "pk")[:limit]
        )
        if not rows:
            return 0, 0
        queued = still_queued([(row.broker_message_id, row.enqueued_at) for row in rows])
        waiting = [row.pk for row in rows if row.broker_message_id in queued]
        lost = [row for row in rows if row.broker_message_id not in queued]
        if waiting:
            published.model.objects.filter(pk__in=waiting).update(enqueued_at=now)
        done, error = _publish_rows(lost, publish, now, group_size)
    if lost:
        logger.warning(
            "Outbox: %d of %d published %s message(s) were no longer in the broker; "
            "%d published again",
            len(lost),
            len(rows),
            what,
            done,
        )
    if error is not None:
        raise PublishError(done, error)
    return len(rows), len(lost)


def _locked(rows: models.QuerySet) -> models.QuerySet:
    return rows.select_for_update(skip_locked=True, of=("self",)).only(*_PUBLISHING_FIELDS)


def _publish_rows(
    rows: list[models.Model], publish: Publish, now: datetime, group_size: GroupSize
) -> tuple[int, Exception | None]:
    """Hand the rows to the broker, `group_size(len(rows))` per message, and record them; stops
    at the first broker error and returns it, so the caller commits what was published before
    raising. A message carries its first row's request id (the actor binds each row's own)."""
    done = 0
    error: Exception | None = None
    size = max(1, group_size(len(rows))) if rows else 1
    for start in range(0, len(rows), size):
        group = rows[start : start + size]
        try:
            message_id = publish([row.pk for row in group], group[0].request_id)[:64]
        except Exception as exc:  # any broker failure: the rows stay unpublished
            error = exc
            break
        for row in group:
            row.broker_message_id = message_id
        done += len(group)
    if done:
        _record_published(rows[:done], now)
    return done, error


def _record_published(rows: list[models.Model], now: datetime) -> None:
    """Store each row's message id and `enqueued_at`, in one statement whatever the number of
    rows (`bulk_update` would build a CASE branch per row, a large part of the dispatcher's
    CPU under load)."""
    meta = rows[0]._meta
    table = connection.ops.quote_name(meta.db_table)
    pk, enqueued, message = (
        connection.ops.quote_name(meta.get_field(name).column)
        for name in (meta.pk.name, "enqueued_at", "broker_message_id")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET {enqueued} = %s, {message} = m.message_id "  # noqa: S608 - names from model metadata
            f"FROM unnest(%s::bigint[], %s::text[]) AS m(id, message_id) WHERE t.{pk} = m.id",
            [now, [row.pk for row in rows], [row.broker_message_id for row in rows]],
        )

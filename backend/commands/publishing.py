"""Publishing outbox rows, shared by every channel (SMS notifications, webhook deliveries).

A channel's rows carry `enqueued_at`, `broker_message_id` and `request_id`. The dispatcher passes
a `publish(row_ids, request_id) -> broker message id` callable, so this module never imports the
broker; one message may carry several rows (the channel says how many: `group_size`), and its
rows share its id. Rows are taken with `FOR UPDATE SKIP LOCKED`, so several dispatchers share them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)

Publish = Callable[[list[int], str], str]  # (row ids, request id) -> the message's id in the broker
GroupSize = Callable[[int], int]  # rows to publish -> rows per message
StillQueued = Callable[[list[tuple[str, datetime]]], set[str]]
_FIELDS = ("pk", "enqueued_at", "broker_message_id", "request_id")


class PublishError(Exception):
    """The broker refused a message; the rows published before it are recorded."""

    def __init__(self, published: int, cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.published = published
        self.cause = cause


def unclaimed_and_due(now: datetime) -> Q:
    """Pending rows no live claim holds whose next attempt is due (with the tolerated clock
    difference between the host that scheduled it and this one)."""
    skew = timedelta(seconds=float(settings.SMS_CLOCK_SKEW_SECONDS))
    return (
        Q(status="pending")
        & (Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + skew))
    )


def _locked(rows: models.QuerySet) -> models.QuerySet:
    return rows.select_for_update(skip_locked=True, of=("self",)).only(*_FIELDS)


def one_per_message(rows: int) -> int:
    return 1


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
            row.enqueued_at = now
        done += len(group)
    if done:
        _record_published(rows[:done], now)
    return done, error


def _record_published(rows: list[models.Model], now: datetime) -> None:
    """Store each row's message id and `enqueued_at`. On PostgreSQL in one plain statement:
    `bulk_update` builds a CASE expression per row in Python, which was a seventh of the SMS
    worker's CPU (docs/performance.md, decision 26)."""
    model = type(rows[0])
    if connection.vendor != "postgresql":
        model.objects.bulk_update(rows, ["enqueued_at", "broker_message_id"])
        return
    meta = model._meta
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


def publish_due(
    due: models.QuerySet,
    *,
    publish: Publish,
    limit: int,
    group_size: GroupSize = one_per_message,
) -> int:
    """Publish the rows of `due` (the channel's rows that need a message now); returns how many."""
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
    cutoff = now - timedelta(seconds=float(settings.OUTBOX_REDELIVERY_GRACE_SECONDS))
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

"""`Idempotency-Key` records: claimed before a create, completed inside the create's transaction.

A claim is its own short transaction, so a concurrent repeat sees it at once (409 while in
progress). Completion happens in the command's transaction, so a record says "done" exactly when
the resource exists. A claim whose request died before committing is taken over after
IDEMPOTENCY_STALE_CLAIM_SECONDS (nothing was created for it, or it would be completed).

Claims are fenced: each carries a token, and completing, storing or releasing it only works
while the record still holds that token. A request that was merely slow (a lock wait, a slow
disk) and lost its claim to a retry cannot complete it: `complete_claim` raises, the command's
transaction rolls back, and the retry's resource is the only one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction

from backend.commands.batches import delete_in_batches
from backend.commands.clock import now_ms
from backend.commands.models import IdempotencyRecord
from backend.errors import IdempotencyInProgress, IdempotencyKeyReused


@dataclass(frozen=True, kw_only=True)
class IdempotencyClaim:
    record_id: int
    token: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class Replay:
    resource_id: int
    body: str | None


class ClaimLost(IdempotencyInProgress):
    """This request's claim was taken over by a later request with the same key."""


def _window(name: str) -> timedelta:
    return timedelta(seconds=float(getattr(settings, name)))


# How often a claim is tried again when the record it collided with vanished before it could be
# read (its holder released it after a 4xx, or housekeeping purged it): each retry is a fresh
# INSERT, and a collision that keeps vanishing is answered as "in progress" (409, retry).
CLAIM_ATTEMPTS = 3


@transaction.atomic(durable=True)
def claim_key(
    *, subject: str, endpoint: str, key: str, fingerprint: str
) -> IdempotencyClaim | Replay:
    """Claim `key` for a new request, or return what the first request with it produced.

    The INSERT can collide with a record that is gone by the time it is read (released or
    purged in between): the claim is then tried again, at most CLAIM_ATTEMPTS times."""
    now = now_ms()
    token = uuid.uuid4()
    for _ in range(CLAIM_ATTEMPTS):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    subject=subject,
                    endpoint=endpoint,
                    key=key,
                    fingerprint=fingerprint,
                    claim_token=token,
                    created_at=now,
                )
            return IdempotencyClaim(record_id=record.pk, token=token)
        except IntegrityError:
            pass
        found = (
            IdempotencyRecord.objects.select_for_update()
            .filter(subject=subject, endpoint=endpoint, key=key)
            .first()
        )
        if found is not None:
            return _claim_existing(found, fingerprint=fingerprint, token=token, now=now)
    raise IdempotencyInProgress(
        "A request with this Idempotency-Key is changing hands; retry later."
    )


def _claim_existing(
    record: IdempotencyRecord, *, fingerprint: str, token: uuid.UUID, now: datetime
) -> IdempotencyClaim | Replay:
    """Precondition: `record` is locked. Take it over when it expired or was abandoned, else
    replay it, or refuse a different body or a request still in progress."""
    expired = record.created_at < now - _window("IDEMPOTENCY_RETENTION_SECONDS")
    abandoned = record.resource_id is None and record.created_at < now - _window(
        "IDEMPOTENCY_STALE_CLAIM_SECONDS"
    )
    if expired or abandoned:
        record.fingerprint = fingerprint
        record.created_at = now
        record.claim_token = token
        record.resource_id = record.response_status = record.response_body = None
        record.save()
        return IdempotencyClaim(record_id=record.pk, token=token)
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body."
        )
    if record.resource_id is None or record.response_status is None:
        raise IdempotencyInProgress(
            "A request with this Idempotency-Key is still in progress; retry later."
        )
    return Replay(resource_id=record.resource_id, body=record.response_body)


def _mine(claim: IdempotencyClaim) -> dict[str, object]:
    return {"pk": claim.record_id, "claim_token": claim.token}


def complete_claim(claim: IdempotencyClaim, *, resource_id: int, status: int = 201) -> None:
    """Precondition: runs inside the transaction that created the resource. Raises ClaimLost
    (rolling that transaction back) when a later request took the claim over."""
    updated = IdempotencyRecord.objects.filter(**_mine(claim), resource_id__isnull=True).update(
        resource_id=resource_id, response_status=status
    )
    if updated != 1:
        raise ClaimLost(
            "A newer request with this Idempotency-Key took over while this one was still "
            "running; its result is the one kept. Retry to get it."
        )


def store_response(claim: IdempotencyClaim, body: str) -> None:
    """Keep the first response body so that replays return it byte for byte."""
    IdempotencyRecord.objects.filter(**_mine(claim)).update(response_body=body)


def release_claim(claim: IdempotencyClaim) -> None:
    """The request failed: nothing was created, so the key may be used again (unless a later
    request holds it by now)."""
    IdempotencyRecord.objects.filter(**_mine(claim), resource_id__isnull=True).delete()


def purge_expired(*, stopping: Callable[[], bool] | None = None) -> int:
    """Delete records past the 24 h replay window, in batches; returns how many."""
    cutoff = now_ms() - _window("IDEMPOTENCY_RETENTION_SECONDS")
    return delete_in_batches(
        IdempotencyRecord.objects.filter(created_at__lt=cutoff), stopping=stopping
    )

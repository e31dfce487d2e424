"""`Idempotency-Key` records: claimed before a create, completed inside the create's transaction.

A claim is its own short transaction, so a concurrent repeat sees it at once (409 while in
progress). Completion happens in the command's transaction, so a record says "done" exactly when
the resource exists. A claim whose request died before committing is taken over after
`STALE_CLAIM` (nothing was created for it, or it would be completed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction

from backend.commands.clock import now_ms
from backend.commands.models import IdempotencyRecord
from backend.errors import IdempotencyInProgress, IdempotencyKeyReused

RETENTION = timedelta(hours=24)
STALE_CLAIM = timedelta(seconds=60)


@dataclass(frozen=True, kw_only=True)
class IdempotencyClaim:
    record_id: int


@dataclass(frozen=True, kw_only=True)
class Replay:
    status: int
    resource_id: int
    body: str | None


@transaction.atomic(durable=True)
def claim_key(
    *, subject: str, endpoint: str, key: str, fingerprint: str
) -> IdempotencyClaim | Replay:
    """Claim `key` for a new request, or return what the first request with it produced."""
    now = now_ms()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                subject=subject, endpoint=endpoint, key=key, fingerprint=fingerprint, created_at=now
            )
        return IdempotencyClaim(record_id=record.pk)
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.select_for_update().get(
        subject=subject, endpoint=endpoint, key=key
    )
    expired = record.created_at < now - RETENTION
    abandoned = record.resource_id is None and record.created_at < now - STALE_CLAIM
    if expired or abandoned:
        record.fingerprint = fingerprint
        record.created_at = now
        record.resource_id = record.response_status = record.response_body = None
        record.save()
        return IdempotencyClaim(record_id=record.pk)
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body."
        )
    if record.resource_id is None or record.response_status is None:
        raise IdempotencyInProgress(
            "A request with this Idempotency-Key is still in progress; retry later."
        )
    return Replay(
        status=record.response_status, resource_id=record.resource_id, body=record.response_body
    )


def complete_claim(claim: IdempotencyClaim, *, resource_id: int, status: int = 201) -> None:
    """Precondition: runs inside the transaction that created the resource."""
    IdempotencyRecord.objects.filter(pk=claim.record_id).update(
        resource_id=resource_id, response_status=status
    )


def store_response(claim: IdempotencyClaim, body: str) -> None:
    """Keep the first response body so that replays return it byte for byte."""
    IdempotencyRecord.objects.filter(pk=claim.record_id).update(response_body=body)


def release_claim(claim: IdempotencyClaim) -> None:
    """The request failed: nothing was created, so the key may be used again."""
    IdempotencyRecord.objects.filter(pk=claim.record_id, resource_id__isnull=True).delete()


def purge_expired() -> int:
    """Delete records past the 24 h replay window; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=now_ms() - RETENTION).delete()
    return deleted

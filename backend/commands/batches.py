"""Deleting many rows without one long statement: the housekeeping's purges.

One `DELETE ... WHERE id IN (SELECT id ... LIMIT n)` per batch, each its own short transaction
(autocommit), so no purge holds locks or runs near the statement timeout however many rows
have piled up, and a purge that is stopped (the worker shuts down) keeps what it deleted.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db.models import QuerySet


def delete_in_batches(rows: QuerySet, *, stopping: Callable[[], bool] | None = None) -> int:
    """Delete `rows` HOUSEKEEPING_BATCH_SIZE at a time, at most HOUSEKEEPING_MAX_BATCHES
    batches (or until `stopping()`); returns how many were deleted. Called outside a
    transaction, each batch commits on its own (inside one, they commit with it). Nothing may
    cascade from the rows (Django would then load them before deleting)."""
    size = int(settings.HOUSEKEEPING_BATCH_SIZE)
    model = rows.model
    deleted = 0
    for _ in range(int(settings.HOUSEKEEPING_MAX_BATCHES)):
        batch = model._default_manager.filter(pk__in=rows.values("pk")[:size])
        count, _ = batch.delete()
        deleted += count
        if count < size or (stopping is not None and stopping()):
            break
    return deleted

"""A claim that collides with a record which vanishes before it is read (its holder released it
after a 4xx, or housekeeping purged it) tries again instead of failing with a 500."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from backend.commands.idempotency import (
    CLAIM_ATTEMPTS,
    IdempotencyClaim,
    claim_key,
    release_claim,
)
from backend.commands.models import IdempotencyRecord
from backend.errors import IdempotencyInProgress

pytestmark = pytest.mark.django_db(transaction=True)

KEY = {"subject": "s", "endpoint": "orders.create", "key": "k", "fingerprint": "f"}


def in_another_session(action) -> None:
    """Run `action` on a connection of its own (another request's), committed when it returns."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive() and not errors, errors


def test_a_holder_releasing_between_the_collision_and_the_read_lets_the_claim_through(
    monkeypatch,
):
    holder = claim_key(**KEY)
    assert isinstance(holder, IdempotencyClaim)
    manager = IdempotencyRecord.objects
    real = manager.select_for_update

    def released_just_now(*args: object, **kwargs: object):
        # The moment between the INSERT's unique violation and the locking read: the holder's
        # request ends with a 4xx and releases its key.
        monkeypatch.setattr(manager, "select_for_update", real)
        in_another_session(lambda: release_claim(holder))
        return real(*args, **kwargs)

    monkeypatch.setattr(manager, "select_for_update", released_just_now)
    claim = claim_key(**KEY)

    assert isinstance(claim, IdempotencyClaim)
    assert claim.token != holder.token
    assert IdempotencyRecord.objects.get().claim_token == claim.token


def test_a_key_that_keeps_vanishing_is_answered_in_progress_after_a_bounded_number_of_tries(
    monkeypatch,
):
    assert isinstance(claim_key(**KEY), IdempotencyClaim)
    manager = IdempotencyRecord.objects
    reads: list[int] = []

    def always_gone(*args: object, **kwargs: object):
        reads.append(1)
        return manager.none()

    monkeypatch.setattr(manager, "select_for_update", always_gone)
    with pytest.raises(IdempotencyInProgress):
        claim_key(**KEY)
    assert len(reads) == CLAIM_ATTEMPTS

"""Claiming SMS outbox rows in one statement: exactly the rows the one-row claim would take."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.commands.models import SmsNotification
from backend.commands.outbox import sms_notifications as outbox
from tests.factories import make_customer, make_order

pytestmark = pytest.mark.django_db(transaction=True)


def _rows(n: int) -> list[int]:
    customer = make_customer()
    orders = [make_order(customer) for _ in range(n)]
    return list(
        SmsNotification.objects.filter(order_id__in=orders)
        .order_by("id")
        .values_list("id", flat=True)
    )


def test_one_statement_claims_the_due_rows_and_the_rest_keep_their_rules(settings):
    now = timezone.now()
    fresh, retry_due, lease_expired, leased, not_due, within_skew, spent, window_over, sent = _rows(
        9
    )
    update = SmsNotification.objects.filter
    update(pk=retry_due).update(attempts=2, first_attempt_at=now - timedelta(minutes=5))
    update(pk=lease_expired).update(attempts=1, claimed_until=now - timedelta(seconds=1))
    update(pk=leased).update(attempts=1, claimed_until=now + timedelta(seconds=60))
    update(pk=not_due).update(attempts=1, next_attempt_at=now + timedelta(seconds=60))
    update(pk=within_skew).update(attempts=1, next_attempt_at=now + timedelta(seconds=1))
    update(pk=spent).update(attempts=settings.SMS_MAX_ATTEMPTS, first_attempt_at=now)
    update(pk=window_over).update(attempts=3, first_attempt_at=now - timedelta(hours=2))
    update(pk=sent).update(status="sent")
    ids = [fresh, retry_due, lease_expired, leased, not_due, within_skew, spent, window_over, sent]

    claims = outbox.claim_notifications(ids)

    assert [c.notification_id for c in claims] == [fresh, retry_due, lease_expired, within_skew]
    assert [c.attempt for c in claims] == [1, 3, 2, 2]
    assert len({c.token for c in claims}) == 1  # one claim, fenced by one token
    rows = {row.pk: row for row in SmsNotification.objects.filter(pk__in=ids)}
    for claim in claims:
        row = rows[claim.notification_id]
        assert (row.claim_token, row.attempts, row.recipient, row.text) == (
            claim.token,
            claim.attempt,
            claim.recipient,
            claim.text,
        )
        assert row.claimed_until > now and row.first_attempt_at is not None
    # The spent budgets were failed by the one-row path, exactly as before.
    assert rows[spent].status == rows[window_over].status == "failed"
    assert rows[leased].attempts == rows[not_due].attempts == 1
    assert rows[sent].status == "sent"
    # A second claim of the same rows takes nothing: they are leased now.
    assert outbox.claim_notifications(ids) == []


def test_the_common_case_is_one_statement(django_assert_num_queries):
    ids = _rows(3)
    with django_assert_num_queries(1):
        assert len(outbox.claim_notifications(ids)) == 3

"""Idempotency claims are fenced: a slow request whose claim was taken over cannot also create."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection
from django.test import Client

from backend.commands.idempotency import (
    ClaimLost,
    IdempotencyClaim,
    claim_key,
    complete_claim,
    release_claim,
)
from backend.commands.models import IdempotencyRecord, Order, SmsNotification
from tests.factories import make_customer
from tests.fixtures.broker import database_url

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_stale_owner_cannot_complete_or_release_a_taken_over_claim(settings):
    settings.IDEMPOTENCY_STALE_CLAIM_SECONDS = 0.2
    first = claim_key(subject="s", endpoint="orders.create", key="k", fingerprint="f")
    assert isinstance(first, IdempotencyClaim)
    time.sleep(0.3)
    second = claim_key(subject="s", endpoint="orders.create", key="k", fingerprint="f")
    assert isinstance(second, IdempotencyClaim)
    assert second.token != first.token

    with pytest.raises(ClaimLost):
        complete_claim(first, resource_id=1)
    release_claim(first)  # changes nothing: the record belongs to the second request now
    complete_claim(second, resource_id=2)
    record = IdempotencyRecord.objects.get()
    assert (record.resource_id, record.claim_token) == (2, second.token)


def wait_for_token(accept, timeout: float = 10.0) -> object:
    """The record's claim token once `accept(token)` holds (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        record = IdempotencyRecord.objects.first()
        token = record.claim_token if record else None
        if accept(token):
            return token
        assert time.monotonic() < deadline, "the claim did not reach the expected state"
        time.sleep(0.02)


def test_takeover_while_the_first_request_still_runs_creates_one_order(
    settings, all_scopes_headers
):
    """The first request waits on a lock longer than the stale-claim window; a client retry
    with the same key takes the claim over. Both then run to the end: one order, one SMS."""
    settings.IDEMPOTENCY_STALE_CLAIM_SECONDS = 0.5
    customer_id = make_customer()
    body = {"customer_id": customer_id, "item": "Kettle", "amount": "25.00"}
    responses: dict[str, int] = {}

    def post(name: str) -> None:
        try:
            response = Client().post(
                "/api/v1/orders/",
                body,
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY="slow-key",
                **all_scopes_headers,
            )
            responses[name] = response.status_code
        finally:
            connection.close()

    # Another session holds the customer's row lock, as a long transaction would.
    with psycopg.connect(database_url(), autocommit=False) as blocker:
        blocker.execute("SELECT id FROM customers WHERE id = %s FOR UPDATE", [customer_id])
        first = threading.Thread(target=post, args=("first",))
        first.start()
        first_token = wait_for_token(lambda token: token is not None)
        time.sleep(0.7)  # the first request waits for longer than the stale-claim window
        retry = threading.Thread(target=post, args=("retry",))
        retry.start()
        wait_for_token(lambda token: token not in (None, first_token))  # taken over
        blocker.rollback()  # release the lock: both requests run to the end
    first.join(timeout=30)
    retry.join(timeout=30)

    assert Order.objects.count() == 1
    assert SmsNotification.objects.count() == 1
    assert sorted(responses.values()) == [201, 409]
    assert responses["retry"] == 201

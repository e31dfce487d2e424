"""Housekeeping deletes in bounded batches, each its own short statement, in a thread of its own:
a purge at volume neither runs into the statement timeout nor stalls publishing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backend.commands.clock import now_ms
from backend.commands.models import IdempotencyRecord, SmsNotification
from backend.jobs import housekeeping
from backend.jobs.dispatcher import Dispatcher
from tests.factories import make_customer, make_order

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.02)


def test_expired_records_are_deleted_in_bounded_batches_each_its_own_statement(settings):
    settings.HOUSEKEEPING_BATCH_SIZE = 10
    long_ago = now_ms() - timedelta(days=8)
    IdempotencyRecord.objects.bulk_create(
        IdempotencyRecord(
            subject="s", endpoint="orders.create", key=f"old-{n}", fingerprint="f",
            created_at=long_ago,
        )
        for n in range(25)
    )  # fmt: skip
    IdempotencyRecord.objects.create(
        subject="s", endpoint="orders.create", key="new", fingerprint="f", created_at=now_ms()
    )

    with CaptureQueriesContext(connection) as queries:
        removed = housekeeping.run()

    assert removed["idempotency_records"] == 25
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
    deletes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("DELETE") and "idempotency_records" in q["sql"]
    ]
    assert len(deletes) == 3  # 10 + 10 + 5
    assert all("LIMIT 10" in sql for sql in deletes), deletes


def test_a_round_stops_at_its_batch_bound_and_the_next_round_goes_on(settings):
    settings.HOUSEKEEPING_BATCH_SIZE = 4
    settings.HOUSEKEEPING_MAX_BATCHES = 2
    long_ago = now_ms() - timedelta(days=8)
    IdempotencyRecord.objects.bulk_create(
        IdempotencyRecord(
            subject="s", endpoint="orders.create", key=f"old-{n}", fingerprint="f",
            created_at=long_ago,
        )
        for n in range(10)
    )  # fmt: skip

    assert housekeeping.run()["idempotency_records"] == 8
    assert housekeeping.run()["idempotency_records"] == 2
    assert not IdempotencyRecord.objects.exists()


def test_publishing_goes_on_while_a_housekeeping_round_runs(stub_broker, settings, monkeypatch):
    settings.OUTBOX_POLL_SECONDS = 0.1
    started, release = threading.Event(), threading.Event()

    def slow_round(**kwargs: object) -> dict[str, int]:
        started.set()
        release.wait(timeout=30)  # a purge at volume, taking its time
        return {}

    monkeypatch.setattr(housekeeping, "run", slow_round)
    dispatcher = Dispatcher(stub_broker)
    dispatcher.start()
    try:
        assert started.wait(timeout=10)
        order_id = make_order(make_customer(), item="Widget", amount="10.00")
        wait_until(lambda: SmsNotification.objects.get(order_id=order_id).enqueued_at is not None)
    finally:
        release.set()
        dispatcher.stop()

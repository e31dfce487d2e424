"""The outbox dispatcher against the real PostgreSQL (LISTEN/NOTIFY, SKIP LOCKED) and Redis."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
from django.db import connection, transaction
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application
from prometheus_client import REGISTRY

from backend.commands.clock import now_ms
from backend.commands.models import EarlyDeliveryReport, IdempotencyRecord, SmsNotification
from backend.commands.outbox import sms_notifications as outbox
from backend.jobs.dispatcher import Dispatcher
from tests.factories import make_customer, make_order

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.02)


def place() -> int:
    return make_order(make_customer(), item="Widget", amount="10.00")


def published(order_id: int) -> bool:
    return SmsNotification.objects.get(order_id=order_id).enqueued_at is not None


def test_a_commit_wakes_the_dispatcher_without_waiting_for_the_poll(stub_broker, settings):
    settings.OUTBOX_POLL_SECONDS = 30.0  # polling alone would take half a minute
    dispatcher = Dispatcher(stub_broker)
    dispatcher.start()
    try:
        wait_until(lambda: dispatcher.passes >= 2)  # listening now
        order_id = place()
        wait_until(lambda: published(order_id), timeout=10)
    finally:
        dispatcher.stop()
    assert stub_broker.queues["sms"].qsize() == 1


def test_a_rolled_back_order_publishes_nothing(stub_broker, monkeypatch):
    """The order's transaction fails after it wrote the outbox row: nothing is published."""
    from decimal import Decimal

    from backend.commands import orders

    customer = make_customer()
    cmd = orders.PlaceOrder(customer_id=customer, item="x", amount=Decimal("1"))

    def fail_after_the_outbox_row(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the transaction fails after the outbox row was written")

    monkeypatch.setattr(orders.webhook_deliveries, "record_event", fail_after_the_outbox_row)
    with pytest.raises(RuntimeError):
        orders.place_order(cmd)

    assert Dispatcher(stub_broker).run_once() == 0
    assert SmsNotification.objects.count() == 0
    assert stub_broker.queues["sms"].qsize() == 0


@pytest.mark.redis
def test_a_backlog_older_than_the_grace_does_not_grow_with_duplicates(
    redis_broker, redis_namespace, settings
):
    settings.OUTBOX_REDELIVERY_GRACE_SECONDS = 0.2
    orders = [place() for _ in range(30)]
    dispatcher = Dispatcher(redis_broker)
    client: redis.Redis = redis_broker.client
    queue = f"{redis_namespace}:sms"

    rows = SmsNotification.objects.filter(order_id__in=orders)
    messages = -(-30 // outbox.sms_per_message(30))  # 30 rows spread over the worker threads
    assert messages == settings.SMS_BATCH_SPREAD

    assert dispatcher.run_once() == 30
    for _ in range(5):  # no worker consumes: the backlog ages past the grace, sweep after sweep
        time.sleep(0.25)
        assert dispatcher.run_once() == 0
    assert client.llen(queue) == messages
    assert client.hlen(f"{queue}.msgs") == messages
    queued = [json.loads(body)["args"][0] for body in client.hvals(f"{queue}.msgs")]
    assert sorted(pk for ids in queued for pk in ids) == sorted(row.pk for row in rows)

    client.delete(queue, f"{queue}.msgs")  # Redis restarted without persistence: all lost
    time.sleep(0.25)
    assert dispatcher.run_once() == 30
    assert client.llen(queue) == messages
    ids = {row.broker_message_id for row in rows.all()}
    assert ids == {key.decode() for key in client.hkeys(f"{queue}.msgs")}


@pytest.mark.redis
def test_queue_depth_is_exported(redis_broker):
    for _ in range(3):
        place()
    dispatcher = Dispatcher(redis_broker)
    dispatcher.run_once()
    dispatcher.queue_depth()

    assert REGISTRY.get_sample_value("duka_queue_depth", {"queue": "sms"}) == 3


def test_two_dispatchers_share_the_rows_without_publishing_one_twice(stub_broker):
    orders = [place() for _ in range(40)]
    first, second = Dispatcher(stub_broker), Dispatcher(stub_broker)
    with transaction.atomic():
        # The first dispatcher holds a lock on one row (as if mid-publish): the second skips it.
        locked = SmsNotification.objects.select_for_update().get(order_id=orders[0])
        counts: list[int] = []

        def run_second() -> None:
            try:
                counts.append(second.run_once())
            finally:
                connection.close()

        thread = threading.Thread(target=run_second)
        thread.start()
        thread.join(timeout=30)
        assert counts == [39]
        assert locked.enqueued_at is None
    assert first.run_once() == 1
    queued = stub_broker.queues["sms"]
    published = [json.loads(queued.get_nowait())["args"][0] for _ in range(queued.qsize())]
    rows = SmsNotification.objects.filter(order_id__in=orders)
    assert sorted(pk for ids in published for pk in ids) == sorted(row.pk for row in rows)


def test_housekeeping_runs_in_the_dispatcher(stub_broker, settings):
    settings.HOUSEKEEPING_INTERVAL_SECONDS = 0.2
    long_ago = now_ms() - timedelta(days=8)
    IdempotencyRecord.objects.create(
        subject="s", endpoint="orders.create", key="old", fingerprint="f", created_at=long_ago
    )
    IdempotencyRecord.objects.create(
        subject="s", endpoint="orders.create", key="new", fingerprint="f", created_at=now_ms()
    )
    EarlyDeliveryReport.objects.create(
        gateway_message_id="ATXid_never", status="failed", received_at=long_ago
    )
    app = Application.objects.create(
        name="housekeeping-test",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    AccessToken.objects.create(
        application=app, token="expired-token", expires=timezone.now() - timedelta(days=1)
    )
    AccessToken.objects.create(
        application=app, token="live-token", expires=timezone.now() + timedelta(hours=1)
    )

    dispatcher = Dispatcher(stub_broker)
    dispatcher.start()
    try:
        wait_until(lambda: not IdempotencyRecord.objects.filter(key="old").exists())
        wait_until(lambda: not AccessToken.objects.filter(token="expired-token").exists())
        wait_until(lambda: not EarlyDeliveryReport.objects.exists())
    finally:
        dispatcher.stop()
    assert IdempotencyRecord.objects.filter(key="new").exists()
    assert AccessToken.objects.filter(token="live-token").exists()


def test_messages_grow_once_messages_wait(stub_broker, settings):
    """Free worker threads get a message each; a backlog is served in bigger messages."""
    assert [outbox.sms_per_message(n) for n in (1, 8, 9, 15, 160, 1000)] == [1, 1, 2, 2, 20, 20]
    assert outbox.sms_per_message(15, waiting=8) == 15  # no thread free: one message
    assert outbox.sms_per_message(15, waiting=6) == 8  # two threads free

    dispatcher = Dispatcher(stub_broker)
    for _ in range(8):
        place()
    assert dispatcher.run_once() == 8
    assert stub_broker.queues["sms"].qsize() == 8  # one each: nothing was waiting
    assert dispatcher.sms_waiting() == 8
    later = [place() for _ in range(10)]
    assert dispatcher.run_once() == 10
    assert stub_broker.queues["sms"].qsize() == 9  # eight wait already: the ten share one
    rows = SmsNotification.objects.filter(order_id__in=later)
    assert len({row.broker_message_id for row in rows}) == 1

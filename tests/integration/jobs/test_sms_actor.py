"""The SMS actor on Dramatiq's StubBroker with an in-process worker, the real SDK and the
loopback gateway: outcomes, retries, claims, and the outbox relay."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from dramatiq import Worker
from prometheus_client import REGISTRY

from backend.commands import sms as commands
from backend.commands.models import Order, SmsNotification
from backend.jobs.broker import build_broker, install_broker
from backend.jobs.sms import deliver, send_notification
from backend.queries.models import OrderView
from tests.factories import make_customer, make_order
from tests.fixtures.broker import free_port
from tests.fixtures.gateway import Reply
from tests.integration.jobs.conftest import wait_for_sms_status

pytestmark = pytest.mark.django_db(transaction=True)


def counter(status: str) -> float:
    return REGISTRY.get_sample_value("duka_sms_notifications_total", {"status": status}) or 0.0


def place(item: str = "Widget", amount: str = "1500.00") -> int:
    return make_order(
        make_customer(name="Jane", phone_number="+254712345678"), item=item, amount=amount
    )


def test_accepted_sms_is_sent_and_recorded(gateway_settings, stub_worker):
    sent_before = counter("sent")

    order_id = place()

    row = wait_for_sms_status(order_id, "sent")
    [message] = gateway_settings.messages
    assert message.form["to"] == "+254712345678"
    assert (
        message.form["message"]
        == f"Hi Jane, we received your order #{order_id}: Widget, KES 1500.00. Thank you!"
    )
    assert row.gateway_message_id == message.message_id
    assert row.cost == "KES 0.8000"
    assert row.attempts == 1
    assert row.sent_at is not None
    assert row.claimed_until is None
    assert counter("sent") == sent_before + 1


def test_http_500s_then_success_sends_exactly_one_sms(gateway_settings, stub_worker):
    gateway_settings.script(Reply(http_status=500), Reply(http_status=500))

    order_id = place()

    row = wait_for_sms_status(order_id, "sent")
    assert len(gateway_settings.requests) == 3
    assert len(gateway_settings.messages) == 1
    assert row.attempts == 3
    assert row.last_error == ""


def test_timeouts_are_retried(gateway_settings, stub_worker):
    gateway_settings.script(Reply(delay=1.5), Reply(delay=1.5))

    order_id = place()

    row = wait_for_sms_status(order_id, "sent")
    assert row.attempts == 3
    requests = gateway_settings.wait_for_requests(3)
    assert [r.accepted for r in requests] == [False, False, True]


def test_permanent_refusal_fails_at_once_without_retry(gateway_settings, stub_worker):
    failed_before = counter("failed")
    gateway_settings.script(Reply(status_code=403))

    order_id = place()

    row = wait_for_sms_status(order_id, "failed")
    time.sleep(0.5)  # a retry would have arrived by now (backoff base is 0.05 s)
    assert len(gateway_settings.requests) == 1
    assert row.attempts == 1
    assert "403" in row.last_error
    assert counter("failed") == failed_before + 1


def test_transient_errors_give_up_after_ten_attempts_and_fail_once(
    gateway_settings, stub_worker, settings
):
    settings.SMS_RETRY_BASE_SECONDS = 0.002
    failed_before = counter("failed")
    gateway_settings.script(*[Reply(http_status=503)] * 12)

    order_id = place()

    row = wait_for_sms_status(order_id, "failed", timeout=30)
    time.sleep(0.3)
    assert len(gateway_settings.requests) == commands.MAX_ATTEMPTS == 10
    assert row.attempts == 10
    assert "gave up after 10 attempts" in row.last_error
    assert counter("failed") == failed_before + 1


def test_duplicate_messages_for_one_notification_send_one_sms(gateway_settings, stub_worker):
    gateway_settings.script(Reply(delay=0.3))

    order_id = place()
    notification_id = SmsNotification.objects.get(order_id=order_id).pk
    for _ in range(3):
        send_notification.send(notification_id)

    wait_for_sms_status(order_id, "sent")
    time.sleep(0.5)
    assert len(gateway_settings.requests) == 1
    assert deliver(notification_id) == "skipped"


def test_claim_of_a_dead_worker_blocks_only_until_its_lease_ends(
    gateway_settings, stub_broker, settings
):
    settings.SMS_CLAIM_LEASE_SECONDS = 0.3
    order_id = place()
    notification_id = SmsNotification.objects.get(order_id=order_id).pk
    assert commands.claim_notification(notification_id) is not None  # ...and the worker died

    assert deliver(notification_id) == "skipped"
    time.sleep(0.4)
    assert deliver(notification_id) == "sent"

    row = SmsNotification.objects.get(pk=notification_id)
    assert row.attempts == 2
    assert len(gateway_settings.messages) == 1


def test_spent_budget_without_an_outcome_fails_instead_of_sending(gateway_settings, stub_broker):
    order_id = place()
    SmsNotification.objects.filter(order_id=order_id).update(attempts=commands.MAX_ATTEMPTS)

    assert deliver(SmsNotification.objects.get(order_id=order_id).pk) == "skipped"

    row = SmsNotification.objects.get(order_id=order_id)
    assert row.status == "failed"
    assert OrderView.objects.get(id=order_id).sms_status == "failed"
    assert gateway_settings.requests == []


def test_a_late_retry_is_not_sent_before_it_is_due(gateway_settings, stub_broker):
    order_id = place()
    row = SmsNotification.objects.get(order_id=order_id)
    SmsNotification.objects.filter(pk=row.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=1)
    )

    assert deliver(row.pk) == "skipped"
    assert gateway_settings.requests == []


def _age(notification_id: int, seconds: float) -> None:
    past = timezone.now() - timedelta(seconds=seconds)
    SmsNotification.objects.filter(pk=notification_id).update(created_at=past, next_attempt_at=None)


def test_relay_enqueues_lost_messages_and_not_twice_in_a_row(stub_broker, settings):
    settings.SMS_RELAY_GRACE_SECONDS = 0.2
    lost = SmsNotification.objects.get(order_id=place()).pk
    stub_broker.flush_all()  # the nudge's message is lost
    _age(lost, 1)
    enqueued: list[int] = []

    assert commands.relay_pending(enqueue=enqueued.append) == 1
    assert commands.relay_pending(enqueue=enqueued.append) == 0  # another replica, right after
    time.sleep(0.3)
    assert commands.relay_pending(enqueue=enqueued.append) == 1  # still lost: relayed again

    assert enqueued == [lost, lost]


def test_relay_leaves_fresh_claimed_scheduled_and_finished_rows_alone(stub_broker, settings):
    settings.SMS_RELAY_GRACE_SECONDS = 0.2
    now = timezone.now()
    fresh = SmsNotification.objects.get(order_id=place()).pk
    claimed, scheduled, sent = (SmsNotification.objects.get(order_id=place()).pk for _ in range(3))
    for pk in (claimed, scheduled, sent):
        _age(pk, 5)
    SmsNotification.objects.filter(pk=claimed).update(claimed_until=now + timedelta(seconds=30))
    SmsNotification.objects.filter(pk=scheduled).update(next_attempt_at=now + timedelta(seconds=30))
    SmsNotification.objects.filter(pk=sent).update(status="sent")
    enqueued: list[int] = []

    assert commands.relay_pending(enqueue=enqueued.append) == 0
    assert enqueued == []
    assert fresh


def test_relay_keeps_rows_due_when_the_broker_refuses(stub_broker, settings):
    settings.SMS_RELAY_GRACE_SECONDS = 0.2
    lost = SmsNotification.objects.get(order_id=place()).pk
    _age(lost, 5)

    def broker_down(notification_id: int) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        commands.relay_pending(enqueue=broker_down)
    assert SmsNotification.objects.get(pk=lost).next_attempt_at is None  # rolled back
    enqueued: list[int] = []
    assert commands.relay_pending(enqueue=enqueued.append) == 1
    assert enqueued == [lost]


def test_relay_inside_the_worker_delivers_a_lost_message_once(
    gateway_settings, stub_broker, settings
):
    settings.SMS_RELAY_INTERVAL_SECONDS = 0.1
    settings.SMS_RELAY_GRACE_SECONDS = 0.3
    order_id = place()
    stub_broker.flush_all()  # the nudge's message is lost
    broker = build_broker(redis_url=None, relay=True)
    previous = install_broker(broker)
    worker = Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        wait_for_sms_status(order_id, "sent", timeout=10)
        time.sleep(0.8)  # several more relay passes
    finally:
        worker.stop(timeout=10_000)
        install_broker(previous)
    assert len(gateway_settings.requests) == 1


def test_order_is_committed_when_the_broker_is_down(settings, caplog):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = closed
    previous = install_broker(build_broker(redis_url=closed, relay=False))
    try:
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="backend.commands.sms"):
            order_id = place()
        elapsed = time.monotonic() - started
    finally:
        install_broker(previous)

    assert Order.objects.filter(pk=order_id).exists()
    assert SmsNotification.objects.get(order_id=order_id).status == "pending"
    assert OrderView.objects.get(id=order_id).sms_status == "pending"
    assert "outbox relay will send it" in caplog.text
    assert elapsed < 2.0

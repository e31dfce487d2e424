"""The SMS actor on Dramatiq's StubBroker with an in-process worker, the real SDK and the
loopback gateway: outcomes, retries, claims, publishing, early delivery reports."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from prometheus_client import REGISTRY

from backend.commands.models import EarlyDeliveryReport, Order, SmsNotification
from backend.commands.outbox import sms_notifications as outbox
from backend.commands.outbox.core import PublishError
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
    assert len(gateway_settings.requests) == settings.SMS_MAX_ATTEMPTS == 10
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
    assert outbox.claim_notification(notification_id) is not None  # ...and the worker died

    assert deliver(notification_id) == "skipped"
    time.sleep(0.4)
    assert deliver(notification_id) == "sent"

    row = SmsNotification.objects.get(pk=notification_id)
    assert row.attempts == 2
    assert len(gateway_settings.messages) == 1


def test_spent_budget_without_an_outcome_fails_instead_of_sending(
    gateway_settings, stub_broker, settings
):
    order_id = place()
    SmsNotification.objects.filter(order_id=order_id).update(attempts=settings.SMS_MAX_ATTEMPTS)

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


def _publish_log() -> tuple[list[int], object]:
    published: list[int] = []

    def publish(row_ids: list[int], request_id: str) -> str:
        published.extend(row_ids)
        return f"msg-{row_ids[0]}-{len(published)}"

    return published, publish


def test_dispatcher_publishes_each_due_row_once(stub_broker):
    first, second = (SmsNotification.objects.get(order_id=place()).pk for _ in range(2))
    published, publish = _publish_log()

    assert outbox.publish_due(publish=publish, limit=100) == 2
    assert outbox.publish_due(publish=publish, limit=100) == 0  # another replica, right after

    assert published == [first, second]
    row = SmsNotification.objects.get(pk=first)
    assert row.enqueued_at is not None
    assert row.broker_message_id == f"msg-{first}-1"


def test_dispatcher_leaves_claimed_scheduled_and_finished_rows_alone(stub_broker):
    now = timezone.now()
    claimed, scheduled, sent = (SmsNotification.objects.get(order_id=place()).pk for _ in range(3))
    SmsNotification.objects.filter(pk=claimed).update(claimed_until=now + timedelta(seconds=30))
    SmsNotification.objects.filter(pk=scheduled).update(next_attempt_at=now + timedelta(seconds=30))
    SmsNotification.objects.filter(pk=sent).update(status="sent")
    published, publish = _publish_log()

    assert outbox.publish_due(publish=publish, limit=100) == 0
    assert published == []


def test_broker_error_keeps_unpublished_rows_due_and_records_the_rest(stub_broker):
    ids = [SmsNotification.objects.get(order_id=place()).pk for _ in range(3)]
    calls: list[int] = []

    def broker_fails_on_the_second(row_ids: list[int], request_id: str) -> str:
        calls.extend(row_ids)
        if len(calls) == 2:
            raise ConnectionError("broker down")
        return f"msg-{row_ids[0]}"

    with pytest.raises(PublishError) as failure:
        outbox.publish_due(publish=broker_fails_on_the_second, limit=100)

    assert failure.value.published == 1
    rows = {row.pk: row for row in SmsNotification.objects.filter(pk__in=ids)}
    assert rows[ids[0]].enqueued_at is not None  # published before the failure: recorded
    assert rows[ids[1]].enqueued_at is None
    assert rows[ids[2]].enqueued_at is None
    published, publish = _publish_log()
    assert outbox.publish_due(publish=publish, limit=100) == 2
    assert published == ids[1:]


def test_sweep_republishes_only_rows_whose_message_is_gone(stub_broker, settings):
    settings.OUTBOX_REDELIVERY_GRACE_SECONDS = 0.2
    queued, lost = (SmsNotification.objects.get(order_id=place()).pk for _ in range(2))
    published, publish = _publish_log()
    outbox.publish_due(publish=publish, limit=100)
    time.sleep(0.3)
    in_broker = {f"msg-{queued}-1"}

    def still_queued(messages):
        return {message_id for message_id, _ in messages if message_id in in_broker}

    assert outbox.republish_lost(publish=publish, still_queued=still_queued, limit=100) == (2, 1)
    assert published == [queued, lost, lost]
    # The queued row's check was refreshed: it is not looked at again before the grace passes.
    assert outbox.republish_lost(publish=publish, still_queued=still_queued, limit=100) == (0, 0)


def test_order_is_committed_without_any_broker_call(settings):
    """The request path has no broker at all: a broker that is down changes nothing."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = closed
    broker = build_broker(redis_url=closed, dispatch=False)
    previous = install_broker(broker)
    enqueued: list[object] = []
    broker.enqueue = enqueued.append  # type: ignore[method-assign]
    try:
        order_id = place()
    finally:
        install_broker(previous)

    assert enqueued == []
    assert Order.objects.filter(pk=order_id).exists()
    assert SmsNotification.objects.get(order_id=order_id).status == "pending"
    assert OrderView.objects.get(id=order_id).sms_status == "pending"


@pytest.mark.parametrize(
    ("report", "final", "error"),
    [("Rejected", "failed", "delivery report: Rejected"), ("Success", "delivered", "")],
)
def test_a_report_that_arrives_before_the_send_is_recorded_is_applied(
    gateway_settings, stub_worker, live_server, settings, report, final, error
):
    """The gateway posts the report before it answers the send: the row is not `sent` yet."""
    settings.SMS_CALLBACK_TOKEN = "callback-secret"
    callback = f"{live_server.url}/api/v1/sms/delivery-reports/?token=callback-secret"
    gateway_settings.script(Reply(report_first=(callback, report)))

    order_id = place()

    row = wait_for_sms_status(order_id, final)
    [request] = gateway_settings.messages
    assert request.report_answer == 200
    assert row.gateway_message_id == request.message_id
    assert error in row.last_error
    assert OrderView.objects.get(id=order_id).sms_status == final
    assert not EarlyDeliveryReport.objects.exists()  # applied, then dropped


def test_early_reports_for_ids_never_sent_change_nothing(stub_broker):
    order_id = place()

    assert outbox.apply_delivery_report(message_id="ATXid_unknown", status="Failed") is False
    assert outbox.apply_delivery_report(message_id="ATXid_unknown", status="Success") is False
    assert outbox.apply_delivery_report(message_id="ATXid_other", status="Buffered") is False

    assert SmsNotification.objects.get(order_id=order_id).status == "pending"
    [kept] = EarlyDeliveryReport.objects.all()  # the first final report is kept, not replaced
    assert (kept.gateway_message_id, kept.status) == ("ATXid_unknown", "failed")


def test_the_actor_returns_nothing_so_dramatiq_logs_no_warning(
    gateway_settings, stub_worker, caplog
):
    with caplog.at_level(logging.WARNING):
        order_id = place()
        wait_for_sms_status(order_id, "sent")
        stub_worker.broker.join("sms", timeout=10_000)
        stub_worker.join()

    assert [r.getMessage() for r in caplog.records if r.name.startswith("dramatiq")] == []


def test_one_message_sends_each_of_its_rows_once(gateway_settings):
    orders = [place(item=f"Item {n}") for n in range(5)]
    ids = [SmsNotification.objects.get(order_id=o).pk for o in orders]
    gateway_settings.script(Reply(), Reply(http_status=500))  # the second one is retried

    send_notification(ids)
    assert len(gateway_settings.messages) == 4
    rows = {row.pk: row for row in SmsNotification.objects.filter(pk__in=ids)}
    assert [rows[pk].status for pk in ids] == ["sent", "pending", "sent", "sent", "sent"]
    assert rows[ids[1]].next_attempt_at is not None and rows[ids[1]].enqueued_at is None

    send_notification(ids)  # the same message again (redelivery): only the due retry is sent
    assert len(gateway_settings.messages) == 5
    assert set(SmsNotification.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        "sent"
    }
    sent_for = sorted(
        int(m.form["message"].split("#")[1].split(":")[0]) for m in gateway_settings.messages
    )
    assert sent_for == sorted(orders)


def test_a_message_from_before_batching_still_sends(gateway_settings):
    row = SmsNotification.objects.get(order_id=place())
    send_notification(row.pk)  # an int, as messages published by the previous version carry
    row.refresh_from_db()
    assert row.status == "sent"


def test_a_batch_out_of_time_gives_the_rest_back(gateway_settings, settings):
    """Every attempt must end within the actor's time limit (the leases are sized from it):
    a batch that would run past it stops, and its unattempted claims are released."""
    settings.SMS_ACTOR_TIME_LIMIT_SECONDS = settings.SMS_GATEWAY_DEADLINE_SECONDS  # no time left
    ids = [SmsNotification.objects.get(order_id=place()).pk for _ in range(3)]
    SmsNotification.objects.filter(pk__in=ids).update(
        enqueued_at=timezone.now(), broker_message_id="m"
    )

    from backend.jobs.sms import deliver_many

    assert deliver_many(ids) == {ids[0]: "sent", ids[1]: "released", ids[2]: "released"}
    assert len(gateway_settings.messages) == 1
    rest = SmsNotification.objects.filter(pk__in=ids[1:])
    for row in rest:
        assert (row.status, row.attempts, row.first_attempt_at, row.claim_token) == (
            "pending",
            0,
            None,
            None,
        )
        assert (row.enqueued_at, row.broker_message_id) == (None, "")  # published again next pass
    published, publish = _publish_log()
    assert outbox.publish_due(publish=publish, limit=100) == 2
    assert sorted(published) == sorted(ids[1:])


def test_an_accepted_send_is_recorded_while_the_next_send_hangs(gateway_settings, settings):
    """The worker killed while the gateway holds the second send of a batch: the first, which
    AT already accepted, is `sent` by then (within the record window), or it would be sent
    again after its lease (the soak found this: the acceptance waited for the next send)."""
    from backend.jobs.sms import deliver_many

    settings.SMS_RECORD_WINDOW_SECONDS = 0.05
    settings.SMS_GATEWAY_READ_TIMEOUT_SECONDS = 10.0
    settings.SMS_GATEWAY_DEADLINE_SECONDS = 12.0
    ids = [SmsNotification.objects.get(order_id=place()).pk for _ in range(2)]
    gateway_settings.script(Reply(), Reply(delay=4.0))

    def work() -> None:
        try:
            deliver_many(ids)
        finally:
            connections.close_all()

    worker = threading.Thread(target=work)
    worker.start()
    held = gateway_settings.wait_for_requests(2)  # the second send is held at the gateway now
    deadline = time.monotonic() + 3.0
    while SmsNotification.objects.get(pk=ids[0]).status != "sent":
        assert time.monotonic() < deadline, "the accepted send waited for the next one"
        time.sleep(0.02)
    assert not held[1].accepted  # still hanging: a kill now would lose nothing accepted
    worker.join(15)
    assert not worker.is_alive()
    assert set(SmsNotification.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        "sent"
    }


def test_fast_sends_are_recorded_together(gateway_settings, settings, monkeypatch):
    from backend.jobs.sms import deliver_many

    settings.SMS_RECORD_WINDOW_SECONDS = 5.0
    sizes: list[int] = []
    record = outbox.record_sends

    def counted(sends):
        sizes.append(len(sends))
        return record(sends)

    monkeypatch.setattr(outbox, "record_sends", counted)
    ids = [SmsNotification.objects.get(order_id=place()).pk for _ in range(5)]

    assert set(deliver_many(ids).values()) == {"sent"}
    assert sizes == [5]  # one transaction for the five


def test_an_interrupted_batch_still_records_what_was_accepted(
    gateway_settings, settings, monkeypatch
):
    """Dramatiq's time limit (or a shutdown) raises inside the actor: the sends AT accepted
    before it were recorded as they were accepted, so they are not sent again after the lease."""
    from backend.integrations.africastalking import AfricasTalkingGateway
    from backend.jobs.sms import deliver_many

    class Interrupted(BaseException):
        pass

    ids = [SmsNotification.objects.get(order_id=place()).pk for _ in range(3)]
    send = AfricasTalkingGateway.send
    calls: list[int] = []

    def third_interrupted(self, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise Interrupted
        return send(self, **kwargs)

    monkeypatch.setattr(AfricasTalkingGateway, "send", third_interrupted)
    with pytest.raises(Interrupted):
        deliver_many(ids)

    rows = {row.pk: row for row in SmsNotification.objects.filter(pk__in=ids)}
    assert [rows[pk].status for pk in ids] == ["sent", "sent", "pending"]
    assert rows[ids[2]].claimed_until is not None  # its lease keeps it from a second send
    assert len(gateway_settings.messages) == 2

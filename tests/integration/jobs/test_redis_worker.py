"""Real Redis, real `dramatiq backend.jobs.worker` processes, loopback gateway, test database."""

from __future__ import annotations

import time
import urllib.request

import pytest

from backend.commands.models import Order, SmsNotification
from backend.jobs.broker import build_broker, install_broker
from tests.factories import make_customer, make_order
from tests.fixtures.broker import free_port
from tests.fixtures.gateway import Reply
from tests.integration.jobs.conftest import gateway_env, wait_for_sms_status

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def scrape(port: int, timeout: float = 15.0) -> str:
    """The worker's metrics page (its exposition process starts after the workers)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_end_to_end_api_outbox_redis_worker_gateway(
    client, all_scopes_headers, redis_broker, worker_process, gateway
):
    worker = worker_process(env=gateway_env(gateway))
    customer = client.post(
        "/api/v1/customers/",
        {"name": "Jane", "code": "JANE", "phone_number": "0712 345 678"},
        content_type="application/json",
        **all_scopes_headers,
    )
    assert customer.status_code == 201, customer.content

    response = client.post(
        "/api/v1/orders/",
        {"customer_id": customer.json()["id"], "item": "Widget", "amount": "1500.00"},
        content_type="application/json",
        **all_scopes_headers,
    )

    assert response.status_code == 201, response.content
    order = response.json()
    assert order["sms_status"] in {"pending", "sent"}
    wait_for_sms_status(order["id"], "sent")
    shown = client.get(f"/api/v1/orders/{order['id']}/", **all_scopes_headers).json()
    assert shown["sms_status"] == "sent"
    [message] = gateway.messages
    assert message.form["to"] == "+254712345678"
    assert message.form["message"] == (
        f"Hi Jane, we received your order #{order['id']}: Widget, KES 1500.00. Thank you!"
    )
    text = scrape(worker.metrics_port)
    assert 'duka_sms_notifications_total{status="sent"} 1.0' in text
    assert "duka_sms_send_seconds_count 1.0" in text
    assert "dramatiq_messages_total" in text


def test_broker_down_at_order_time_then_relay_delivers_exactly_once(
    settings, redis_broker, worker_process, gateway
):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    previous = install_broker(build_broker(redis_url=closed, relay=False))
    try:
        order_id = make_order(make_customer(), item="Kettle", amount="25.00")
    finally:
        install_broker(previous)
    assert Order.objects.filter(pk=order_id).exists()
    assert SmsNotification.objects.get(order_id=order_id).status == "pending"

    started = time.monotonic()
    worker_process(env=gateway_env(gateway))  # the broker is reachable again
    wait_for_sms_status(order_id, "sent", timeout=60)
    assert time.monotonic() - started < 60
    time.sleep(2.0)  # several more relay passes (every 0.5 s in the worker's test settings)

    assert len(gateway.requests) == 1
    assert len(gateway.messages) == 1


@pytest.mark.parametrize(
    "redelivery",
    [
        # The relay sweep re-enqueues the row once the dead worker's claim lease has expired;
        # Dramatiq's own redelivery is kept out of the way (heartbeat timeout beyond the test).
        {"DUKA_TEST_HEARTBEAT_SECONDS": "600"},
        # Dramatiq requeues the dead worker's unacked message (heartbeat timeout + maintenance);
        # the relay is kept out of the way to show this path on its own.
        {"DUKA_TEST_RELAY_INTERVAL_SECONDS": "3600", "DUKA_TEST_CLAIM_LEASE_SECONDS": "1"},
    ],
    ids=["by-relay", "by-dramatiq-redelivery"],
)
def test_worker_killed_mid_send_is_redelivered_and_sends_one_sms(
    redis_broker, worker_process, gateway, redelivery
):
    env = {**gateway_env(gateway), **redelivery}
    gateway.script(Reply(delay=3.0))  # the first send hangs until after the kill
    first = worker_process(env=env)
    order_id = make_order(make_customer(), item="Lamp", amount="40.00")
    gateway.wait_for_requests(1, timeout=20)

    first.kill()  # SIGKILL mid-job: no ack, no outcome recorded, claim lease still held
    row = SmsNotification.objects.get(order_id=order_id)
    assert row.status == "pending"
    assert row.claimed_until is not None

    second = worker_process(env=env)
    row = wait_for_sms_status(order_id, "sent", timeout=60)

    requests = gateway.wait_for_requests(2)
    time.sleep(1.0)
    assert requests[0].client_gone  # the killed worker never got an acceptance
    assert len(gateway.messages) == 1
    assert row.attempts == 2
    relayed = "Outbox relay re-enqueued" in second.log
    assert relayed is not ("DUKA_TEST_RELAY_INTERVAL_SECONDS" in redelivery)


def test_worker_refuses_to_start_without_redis_url(worker_process):
    worker = worker_process(env={"REDIS_URL": ""}, wait=False)

    assert worker.process.wait(timeout=60) != 0
    assert "REDIS_URL must be set" in worker.log

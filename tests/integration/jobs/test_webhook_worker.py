"""Webhooks through real Redis and real `dramatiq backend.jobs.worker` processes."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import close_old_connections, connection
from standardwebhooks.webhooks import Webhook

from backend.commands import webhook_endpoints
from backend.commands.models import WebhookDelivery
from tests.factories import make_customer, make_order
from tests.fixtures.receiver import Answer, Receiver
from tests.integration.jobs.test_redis_worker import scrape

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def private_ok(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True


def subscribe(url: str, *types: str) -> tuple[int, str]:
    endpoint_id = webhook_endpoints.create_webhook_endpoint(
        webhook_endpoints.CreateWebhookEndpoint(owner="test-user", url=url, events=list(types))
    )
    return endpoint_id, webhook_endpoints.get_secret(endpoint_id)


def metric(page: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", page, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_100_concurrent_orders_make_exactly_100_events_per_endpoint(
    private_ok, redis_broker, worker_process, receiver: Receiver, second_receiver: Receiver
):
    first_id, first_secret = subscribe(receiver.url, "order.created")
    second_id, _ = subscribe(second_receiver.url, "order.created", "customer.created")
    customers = [make_customer() for _ in range(10)]
    worker = worker_process()

    def place(n: int) -> int:
        try:
            return make_order(customers[n % 10], item=f"Item {n}", amount="5.00")
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        order_ids = sorted(pool.map(place, range(100)))

    receiver.wait_for(lambda r: len(r.delivered) >= 100, timeout=120)
    second_receiver.wait_for(lambda r: len(r.delivered) >= 110, timeout=120)
    close_old_connections()
    assert WebhookDelivery.objects.filter(endpoint_id=first_id).count() == 100
    assert WebhookDelivery.objects.filter(endpoint_id=second_id).count() == 110
    got = [json.loads(r.body) for r in receiver.delivered]
    assert sorted(e["data"]["id"] for e in got) == order_ids
    assert {e["type"] for e in got} == {"order.created"}
    assert len({r.headers["webhook-id"] for r in receiver.delivered}) == 100
    for request in receiver.delivered:
        Webhook(first_secret).verify(request.body, request.headers)
    second_orders = [
        json.loads(r.body)["data"]["id"]
        for r in second_receiver.delivered
        if json.loads(r.body)["type"] == "order.created"
    ]
    assert sorted(second_orders) == order_ids

    deadline = time.monotonic() + 30
    while True:
        page = scrape(worker.metrics_port)
        delivered = metric(page, 'duka_webhook_deliveries_total{result="delivered"}')
        pending = metric(page, "duka_webhook_pending")
        if (delivered, pending) == (210.0, 0.0) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert delivered == 210.0
    assert pending == 0.0
    assert "duka_webhook_delivery_seconds_count" in page
    assert len(receiver.requests) == 100  # nothing was sent twice


def test_worker_killed_mid_delivery_delivers_after_restart(
    private_ok, redis_broker, worker_process, receiver: Receiver
):
    env = {"DUKA_TEST_CLAIM_LEASE_SECONDS": "1", "DUKA_TEST_HEARTBEAT_SECONDS": "2"}
    _, secret = subscribe(receiver.url, "customer.created")
    receiver.script(Answer(hang=True))  # the first attempt never gets an answer
    first = worker_process(env=env)
    customer_id = make_customer()
    receiver.wait_for(lambda r: len(r.requests) == 1)

    first.kill()  # SIGKILL mid-delivery: no outcome recorded, the message unacked
    close_old_connections()
    row = WebhookDelivery.objects.get()
    assert row.status == "pending"
    assert row.claimed_until is not None

    worker_process(env=env)
    receiver.wait_for(lambda r: len(r.delivered) == 1, timeout=60)
    [hung, got] = receiver.requests
    assert hung.headers["webhook-id"] == got.headers["webhook-id"]
    assert Webhook(secret).verify(got.body, got.headers)["data"]["id"] == customer_id
    deadline = time.monotonic() + 20
    while row.status != "delivered" and time.monotonic() < deadline:
        time.sleep(0.1)
        row.refresh_from_db()
    assert row.status == "delivered"
    assert row.attempts == 2

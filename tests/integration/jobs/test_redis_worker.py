"""Real Redis, real `dramatiq backend.jobs.worker` processes, loopback gateway, test database."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request

import pytest
import redis

from backend.commands.models import SmsNotification
from backend.jobs.broker import build_broker, install_broker
from tests.factories import make_customer, make_order
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


def test_a_silent_broker_costs_orders_nothing_and_every_sms_goes_out_once_it_answers(
    client, all_scopes_headers, settings, silent_redis, worker_process, gateway
):
    """The broker accepts TCP and never answers. Orders do not wait for it (the request path has
    no broker call at all); the worker's dispatcher publishes every SMS once it answers."""
    settings.REDIS_URL = silent_redis.url
    previous = install_broker(build_broker(redis_url=silent_redis.url, dispatch=False))
    try:
        customer = client.post(
            "/api/v1/customers/",
            {"name": "Jane", "code": "SILENT", "phone_number": "+254712345678"},
            content_type="application/json",
            **all_scopes_headers,
        ).json()
        orders = []
        for n in range(5):
            response = client.post(
                "/api/v1/orders/",
                {"customer_id": customer["id"], "item": f"Item {n}", "amount": "10.00"},
                content_type="application/json",
                **all_scopes_headers,
            )
            assert response.status_code == 201, response.content
            orders.append(response.json()["id"])
    finally:
        install_broker(previous)
    assert silent_redis.connections == 0  # no request touched the broker

    worker_process(env={**gateway_env(gateway), "REDIS_URL": silent_redis.url})
    time.sleep(2.0)  # the worker's dispatcher and consumers are stuck on the silent broker
    assert gateway.requests == []
    assert silent_redis.connections > 0

    silent_redis.answer()
    for order_id in orders:
        wait_for_sms_status(order_id, "sent", timeout=60)
    time.sleep(1.0)  # a duplicate would arrive by now
    assert len(gateway.requests) == len(gateway.messages) == 5


@pytest.mark.parametrize(
    "lost",
    [
        # The message stays in Redis, held by the dead worker: Dramatiq's maintenance requeues
        # it, or the dispatcher's sweep publishes the row again (the worker's heartbeat is stale).
        False,
        # Redis lost the message (restart without persistence): the dispatcher's sweep finds the
        # row's message gone and publishes it again once the dead worker's lease has ended.
        True,
    ],
    ids=["redelivered-by-dramatiq", "lost-and-republished"],
)
def test_worker_killed_mid_send_is_redelivered_and_sends_one_sms(
    redis_broker, redis_url, redis_namespace, worker_process, gateway, lost
):
    env = {
        **gateway_env(gateway),
        "DUKA_TEST_CLAIM_LEASE_SECONDS": "1",
        "DUKA_TEST_HEARTBEAT_SECONDS": "600" if lost else "2",
    }
    gateway.script(Reply(delay=3.0))  # the first send hangs until after the kill
    first = worker_process(env=env)
    order_id = make_order(make_customer(), item="Lamp", amount="40.00")
    gateway.wait_for_requests(1, timeout=20)

    first.kill()  # SIGKILL mid-job: no ack, no outcome recorded, claim lease still held
    row = SmsNotification.objects.get(order_id=order_id)
    assert row.status == "pending"
    assert row.claimed_until is not None
    if lost:
        client = redis.Redis.from_url(redis_url)
        client.delete(*client.keys(f"{redis_namespace}:*"))
        client.close()

    second = worker_process(env=env)
    row = wait_for_sms_status(order_id, "sent", timeout=60)

    requests = gateway.wait_for_requests(2)
    time.sleep(1.0)  # a duplicate would arrive by now
    # The first send's handler answers only after its 3 s delay; on a fast machine the second
    # worker sends before that, so wait (bounded) for the handler to find its client gone.
    deadline = time.monotonic() + 10
    while not requests[0].client_gone and time.monotonic() < deadline:
        time.sleep(0.05)
    assert requests[0].client_gone  # the killed worker never got an acceptance
    assert len(gateway.messages) == 1
    assert row.attempts == 2
    if lost:
        assert "no longer in the broker" in second.log
    # Else Dramatiq's maintenance or the dispatcher's sweep (the dead worker's heartbeat is
    # stale) may requeue it first: either way one SMS, which is what is asserted above.


def test_worker_liveness_follows_its_processes(redis_broker, worker_process):
    worker = worker_process(env={"DUKA_TEST_HEARTBEAT_MAX_AGE_SECONDS": "2"})
    _, body = healthz(worker.metrics_port, until=200)
    [pid] = body["heartbeats"]

    os.kill(int(pid), signal.SIGSTOP)  # a hung worker process: no heartbeat
    try:
        _, body = healthz(worker.metrics_port, until=503)
    finally:
        os.kill(int(pid), signal.SIGCONT)
    assert body["status"] == "unhealthy"
    assert healthz(worker.metrics_port, until=200)[0] == 200


def test_worker_processes_run_below_the_web_priority(redis_broker, worker_process):
    worker = worker_process(env={"WORKER_NICENESS": "6"})
    _, body = healthz(worker.metrics_port, until=200)
    [pid] = body["heartbeats"]

    assert os.getpriority(os.PRIO_PROCESS, int(pid)) == 6
    assert "worker: CPU priority lowered (nice 6" in worker.log


def healthz(port: int, *, until: int, timeout: float = 20.0) -> tuple[int, dict]:
    """GET the worker's /healthz until it answers `until` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                status, body = response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            status, body = error.code, json.loads(error.read())
        except OSError:
            status, body = 0, {}
        if status == until:
            return status, body
        if time.monotonic() > deadline:
            pytest.fail(f"worker /healthz answered {status} {body}, expected {until}")
        time.sleep(0.2)


def test_worker_refuses_to_start_without_redis_url(worker_process):
    worker = worker_process(env={"REDIS_URL": ""}, wait=False)

    assert worker.process.wait(timeout=60) != 0
    assert "REDIS_URL must be set" in worker.log

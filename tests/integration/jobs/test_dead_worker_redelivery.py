"""A worker SIGKILLed mid-send: its SMS goes out once, soon, without Dramatiq's maintenance.

Contract section 7: a job whose worker died is redelivered within 2 min. Dramatiq requeues a
dead worker's unacked messages only in its maintenance, which runs on a random
DRAMATIQ_MAINTENANCE_CHANCE per million broker commands (minutes to hours apart): these
workers run with a chance of 0, so only the dispatcher's sweep can bring the SMS back. Real
Redis, real `dramatiq` worker processes, the loopback gateway, test-scaled timings.
"""

from __future__ import annotations

import time

import pytest
import redis

from backend.commands.models import SmsNotification
from backend.jobs.dispatcher import SMS_QUEUE
from tests.factories import make_customer, make_order
from tests.fixtures.gateway import Reply
from tests.integration.jobs.conftest import gateway_env, wait_for_sms_status

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

HEARTBEAT_TIMEOUT_SECONDS = 2  # Dramatiq's: a worker silent this long is dead
BOUND_SECONDS = 30  # lease (1 s) + heartbeat timeout + grace (1 s) + a new worker's boot


def test_sms_of_a_worker_killed_mid_send_is_sent_once_without_dramatiq_maintenance(
    redis_broker, redis_url, redis_namespace, worker_process, gateway
):
    env = {
        **gateway_env(gateway),
        "DUKA_TEST_CLAIM_LEASE_SECONDS": "1",
        "DUKA_TEST_HEARTBEAT_SECONDS": str(HEARTBEAT_TIMEOUT_SECONDS),
        "DUKA_TEST_MAINTENANCE_CHANCE": "0",
    }
    gateway.script(Reply(delay=3.0))  # the first send hangs until after the kill
    first = worker_process(env=env)
    order_id = make_order(make_customer(), item="Lamp", amount="40.00")
    gateway.wait_for_requests(1, timeout=20)
    stale_message = SmsNotification.objects.get(order_id=order_id).broker_message_id

    first.kill()  # SIGKILL mid-send: no ack, no outcome, the message held by a dead consumer
    killed_at = time.monotonic()
    client = redis.Redis.from_url(redis_url)
    assert client.hexists(f"{redis_namespace}:{SMS_QUEUE}.msgs", stale_message)

    second = worker_process(env=env)
    row = wait_for_sms_status(order_id, "sent", timeout=BOUND_SECONDS)
    print(f"sent {time.monotonic() - killed_at:.1f}s after the kill")

    requests = gateway.wait_for_requests(2)
    deadline = time.monotonic() + 10  # the first request's handler answers after its delay
    while not requests[0].client_gone and time.monotonic() < deadline:
        time.sleep(0.05)
    assert requests[0].client_gone  # the killed worker never got an acceptance
    assert row.attempts == 2
    assert row.broker_message_id != stale_message  # the dispatcher published it again
    assert "held by a worker that stopped" in second.log

    # Dramatiq's maintenance may still requeue the dead worker's message, later: it finds the
    # SMS sent and sends nothing. A worker that runs maintenance on every command shows it.
    worker_process(env={**env, "DUKA_TEST_MAINTENANCE_CHANCE": "1000000"})
    deadline = time.monotonic() + 30
    while client.hexists(f"{redis_namespace}:{SMS_QUEUE}.msgs", stale_message):
        assert time.monotonic() < deadline, "the stale message was never redelivered"
        time.sleep(0.1)
    time.sleep(1.0)  # a duplicate would arrive by now
    client.close()
    assert len(gateway.messages) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)

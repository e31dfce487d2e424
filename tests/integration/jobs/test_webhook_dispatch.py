"""The dispatcher's webhook channel: NOTIFY wake-up, lost-message sweep on the real Redis,
queue depth and the pending gauge; the SMS channel beside it is unchanged."""

from __future__ import annotations

import time

import pytest
import redis
from prometheus_client import REGISTRY

from backend.commands import customers, webhook_endpoints
from backend.commands.models import WebhookDelivery
from backend.jobs.dispatcher import Dispatcher
from tests.factories import make_customer
from tests.integration.jobs.test_dispatcher import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hook(settings) -> int:
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    return webhook_endpoints.create_webhook_endpoint(
        webhook_endpoints.CreateWebhookEndpoint(
            owner="test-user", url="http://127.0.0.1:9/h", events=["customer.created"]
        )
    )


def test_a_commit_wakes_the_dispatcher_for_webhook_rows(stub_broker, settings, hook):
    settings.OUTBOX_POLL_SECONDS = 30.0  # polling alone would take half a minute
    dispatcher = Dispatcher(stub_broker)
    dispatcher.start()
    try:
        wait_until(lambda: dispatcher.passes >= 2)
        make_customer()
        wait_until(lambda: WebhookDelivery.objects.filter(enqueued_at__isnull=False).exists())
    finally:
        dispatcher.stop()
    assert stub_broker.queues["webhooks"].qsize() == 1
    assert stub_broker.queues["sms"].qsize() == 0


@pytest.mark.redis
def test_lost_webhook_messages_are_republished_and_a_backlog_never_grows(
    redis_broker, redis_namespace, settings, hook
):
    settings.OUTBOX_REDELIVERY_GRACE_SECONDS = 0.2
    for _ in range(20):
        make_customer()
    dispatcher = Dispatcher(redis_broker)
    client: redis.Redis = redis_broker.client
    queue = f"{redis_namespace}:webhooks"

    assert dispatcher.run_once() == 20
    for _ in range(3):
        time.sleep(0.25)
        assert dispatcher.run_once() == 0
    assert client.hlen(f"{queue}.msgs") == 20

    client.delete(queue, f"{queue}.msgs")  # Redis lost them
    time.sleep(0.25)
    assert dispatcher.run_once() == 20
    ids = set(WebhookDelivery.objects.values_list("broker_message_id", flat=True))
    assert ids == {key.decode() for key in client.hkeys(f"{queue}.msgs")}

    dispatcher.queue_depth()
    assert REGISTRY.get_sample_value("duka_queue_depth", {"queue": "webhooks"}) == 20
    dispatcher._periodic()
    assert REGISTRY.get_sample_value("duka_webhook_pending") == 20


def test_an_older_pending_event_of_the_subject_holds_the_next_back(stub_broker, hook):
    customer_id = make_customer()  # one event, for the `hook` endpoint only
    endpoint_all = webhook_endpoints.create_webhook_endpoint(
        webhook_endpoints.CreateWebhookEndpoint(
            owner="test-user",
            url="http://127.0.0.1:9/all",
            events=["customer.created", "customer.updated"],
        )
    )
    customers.patch_customer(customers.PatchCustomer(customer_id=customer_id, name="A"))
    customers.patch_customer(customers.PatchCustomer(customer_id=customer_id, name="B"))
    dispatcher = Dispatcher(stub_broker)

    # The first update for `endpoint_all` is published; the second waits for it.
    assert dispatcher.run_once() == 2  # the hook's created event, and the first update
    rows = list(WebhookDelivery.objects.filter(endpoint_id=endpoint_all).order_by("pk"))
    assert [r.enqueued_at is not None for r in rows] == [True, False]
    WebhookDelivery.objects.filter(pk=rows[0].pk).update(status="delivered")
    assert dispatcher.run_once() == 1

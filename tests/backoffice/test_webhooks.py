"""The webhook endpoints screen: status, disabled_reason, last_error, recent deliveries; "enable
again" and "send a ping" through backend/commands/webhook_endpoints.py."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE
from django.test import Client

from backend.commands import webhook_endpoints
from backend.commands.models import WebhookDelivery, WebhookEndpoint
from backend.commands.outbox import webhook_deliveries
from tests.backoffice.conftest import audit, messages_of, new_customer, page_text

pytestmark = pytest.mark.django_db

ENDPOINTS = "/admin/backoffice/webhookendpoint/"


@pytest.fixture
def endpoint(settings) -> int:
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    return webhook_endpoints.create_webhook_endpoint(
        webhook_endpoints.CreateWebhookEndpoint(
            owner="shop-app", url="http://127.0.0.1:9/hook", events=["customer.created"]
        )
    )


def disable_as_the_worker_does(endpoint_id: int) -> None:
    """A delivery answered 410 Gone: the worker's own bookkeeping disables the endpoint."""
    new_customer()  # one customer.created event for it
    delivery = WebhookDelivery.objects.get(endpoint_id=endpoint_id)
    claim = webhook_deliveries.claim_delivery(delivery.pk)
    assert claim is not None
    webhook_deliveries.record_failure(claim, error="410 Gone", gone=True)


def test_the_screen_shows_status_reason_error_and_recent_deliveries(viewer: Client, endpoint: int):
    disable_as_the_worker_does(endpoint)

    listing = page_text(viewer.get(ENDPOINTS))
    detail = viewer.get(f"{ENDPOINTS}{endpoint}/change/")
    webhook_endpoints.delete_webhook_endpoint(endpoint, owner="shop-app")
    live = viewer.get(ENDPOINTS, {"deleted": "no"}).context["cl"].result_list
    deleted = viewer.get(ENDPOINTS, {"deleted": "yes"}).context["cl"].result_list

    assert "the receiver answered 410 Gone" in listing
    text = page_text(detail)
    assert "the receiver answered 410 Gone" in text  # disabled_reason
    assert "410 Gone" in text  # last_error
    assert "customer.created" in text and "failed" in text  # the recent delivery
    stored = WebhookEndpoint.objects.get(pk=endpoint).secret
    assert stored not in detail.content.decode()
    assert webhook_endpoints.open_secret(stored) not in detail.content.decode()
    assert ([e.pk for e in live], [e.pk for e in deleted]) == ([], [endpoint])


def test_enable_again_clears_the_reason_and_restarts_the_failure_run(
    operator: Client, endpoint: int
):
    disable_as_the_worker_does(endpoint)

    response = operator.post(
        ENDPOINTS, {"action": "enable_again", "_selected_action": [endpoint]}, follow=True
    )

    assert any("Enabled again: 1 of 1." in m for m in messages_of(response)), messages_of(response)
    row = WebhookEndpoint.objects.get(pk=endpoint)
    assert (row.enabled, row.disabled_reason, row.failing_since) == (True, "", None)
    assert row.last_error == "410 Gone"  # kept: what happened last
    [entry] = audit(object_id=str(endpoint))
    assert entry.action_flag == CHANGE
    assert (
        entry.change_message == "Enabled again (it was disabled: the receiver answered 410 Gone)."
    )
    new_customer("NEXT")  # new events reach it again
    assert WebhookDelivery.objects.filter(endpoint_id=endpoint, status="pending").count() == 1

    again = operator.post(
        ENDPOINTS, {"action": "enable_again", "_selected_action": [endpoint]}, follow=True
    )

    assert any("enabled already" in m for m in messages_of(again))
    assert len(audit(object_id=str(endpoint))) == 1


def test_a_deleted_endpoint_is_not_enabled_again(operator: Client, endpoint: int):
    webhook_endpoints.delete_webhook_endpoint(endpoint, owner="shop-app")

    response = operator.post(
        ENDPOINTS, {"action": "enable_again", "_selected_action": [endpoint]}, follow=True
    )

    assert any("does not exist" in m for m in messages_of(response))
    assert not WebhookEndpoint.objects.get(pk=endpoint).enabled
    assert audit() == []


def test_send_a_ping_queues_a_ping_event_even_while_disabled(operator: Client, endpoint: int):
    disable_as_the_worker_does(endpoint)

    operator.post(ENDPOINTS, {"action": "send_ping", "_selected_action": [endpoint]})

    [ping] = WebhookDelivery.objects.filter(endpoint_id=endpoint, event_type="webhook.ping")
    assert ping.status == "pending"
    [entry] = audit(object_id=str(endpoint))
    assert entry.change_message == f"Sent a ping (event {ping.event_id})."


def test_a_viewer_can_neither_enable_nor_ping(viewer: Client, endpoint: int):
    disable_as_the_worker_does(endpoint)

    listing = viewer.get(ENDPOINTS)
    for action in ("enable_again", "send_ping"):
        viewer.post(ENDPOINTS, {"action": action, "_selected_action": [endpoint]})

    assert b'name="action"' not in listing.content
    assert not WebhookEndpoint.objects.get(pk=endpoint).enabled
    assert not WebhookDelivery.objects.filter(event_type="webhook.ping").exists()
    assert viewer.post(f"{ENDPOINTS}{endpoint}/change/", {"enabled": "on"}).status_code == 403
    assert audit() == []

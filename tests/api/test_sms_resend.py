"""SMS a support team can act on: `sms_error`, `?sms_status=`, and `POST orders/{id}/sms/`."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from backend.commands.models import SmsNotification
from backend.commands.outbox import sms_notifications as outbox
from tests.fixtures.gateway import Reply
from tests.integration.jobs.conftest import wait_for_sms_status

pytestmark = pytest.mark.django_db(transaction=True)

PROBLEM = "https://duka.dev/problems/"


def resend(api, order_id: int, **headers: str):
    """`POST orders/{id}/sms/` without a body, as `curl -X POST` sends it."""
    return api.call("POST", f"orders/{order_id}/sms/", raw="", **headers)


def failed_order(api, gateway) -> dict:
    """An order whose SMS the gateway refused for good (403 InvalidPhoneNumber)."""
    gateway.script(Reply(status_code=403))
    customer = api.post(
        "customers/", {"name": "Jane", "code": "RESEND", "phone_number": "+254712345678"}
    ).json()
    order = api.post("orders/", {"customer_id": customer["id"], "item": "Lamp", "amount": "40"})
    assert order.status_code == 201
    wait_for_sms_status(order.json()["id"], "failed")
    return api.get(f"orders/{order.json()['id']}/").json()


def test_a_refused_sms_shows_why_and_is_found_by_the_status_filter(
    api, gateway_settings, stub_worker
):
    order = failed_order(api, gateway_settings)
    other = api.post(
        "orders/", {"customer_id": order["customer_id"], "item": "Cup", "amount": "1"}
    ).json()
    wait_for_sms_status(other["id"], "sent")

    assert (order["sms_status"], order["sms_error"]) == ("failed", "InvalidPhoneNumber")
    assert api.get(f"orders/{other['id']}/").json()["sms_error"] is None
    failed = api.get("orders/?sms_status=failed").json()
    assert [o["id"] for o in failed["items"]] == [order["id"]]
    sent = api.get("orders/?sms_status=sent").json()
    assert [o["id"] for o in sent["items"]] == [other["id"]]
    assert api.get("orders/?sms_status=lost").status_code == 422


def test_a_failed_report_names_its_reason(api, stub_broker):
    customer = api.post(
        "customers/", {"name": "Jo", "code": "REPORT", "phone_number": "+254712345678"}
    ).json()
    order_id = api.post(
        "orders/", {"customer_id": customer["id"], "item": "Pen", "amount": "2"}
    ).json()["id"]
    SmsNotification.objects.filter(order_id=order_id).update(
        status="sent", gateway_message_id="ATXid_r1"
    )
    assert outbox.apply_delivery_report(
        message_id="ATXid_r1", status="Failed", failure_reason="UserInBlacklist"
    )

    shown = api.get(f"orders/{order_id}/").json()
    assert (shown["sms_status"], shown["sms_error"]) == ("failed", "UserInBlacklist")


def test_resend_queues_one_new_sms_for_a_failed_notification(api, gateway_settings, stub_worker):
    order = failed_order(api, gateway_settings)

    response = resend(api, order["id"])

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["id"], body["sms_status"], body["sms_error"]) == (order["id"], "pending", None)
    row = wait_for_sms_status(order["id"], "sent")
    assert row.attempts == 1  # a fresh budget
    assert len(gateway_settings.messages) == 1  # the refused one was never accepted
    again = resend(api, order["id"])
    assert again.status_code == 409
    assert again.json()["type"] == PROBLEM + "sms-not-failed"
    assert len(gateway_settings.messages) == 1


def test_resend_honours_idempotency_key(api, gateway_settings, stub_worker):
    order = failed_order(api, gateway_settings)
    gateway_settings.script(Reply(status_code=403))  # the re-send fails again

    first = resend(api, order["id"], HTTP_IDEMPOTENCY_KEY="resend-1")
    wait_for_sms_status(order["id"], "failed")
    repeat = resend(api, order["id"], HTTP_IDEMPOTENCY_KEY="resend-1")

    assert first.status_code == repeat.status_code == 202
    assert repeat.content == first.content
    assert repeat["Idempotent-Replayed"] == "true"
    assert len(gateway_settings.requests) == 2  # the original and one re-send, not two


def test_concurrent_resends_queue_one_sms(api, all_scopes_headers, gateway_settings, stub_worker):
    order = failed_order(api, gateway_settings)
    statuses: list[int] = []
    barrier = threading.Barrier(6, timeout=30)

    def fire() -> None:
        try:
            barrier.wait()
            response = Client().post(
                f"/api/v1/orders/{order['id']}/sms/",
                data="",
                content_type="application/json",
                **all_scopes_headers,
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=fire) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [202, 409, 409, 409, 409, 409]
    wait_for_sms_status(order["id"], "sent")
    assert len(gateway_settings.messages) == 1


def test_resend_of_an_unknown_or_unfailed_order(api, stub_broker):
    assert resend(api, 999999).status_code == 404
    customer = api.post(
        "customers/", {"name": "Al", "code": "PENDING", "phone_number": "+254712345678"}
    ).json()
    order_id = api.post(
        "orders/", {"customer_id": customer["id"], "item": "Pen", "amount": "2"}
    ).json()["id"]

    response = resend(api, order_id)

    assert response.status_code == 409
    assert "pending" in response.json()["detail"]
    assert SmsNotification.objects.get(order_id=order_id).status == "pending"

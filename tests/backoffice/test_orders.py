"""The orders screen: filters, search, what a detail page shows, and "send the SMS again"
through the SMS resend command, sent by the real worker to the loopback gateway."""

from __future__ import annotations

import pytest
from django.test import Client

from backend.commands import webhook_endpoints
from backend.commands.models import SmsNotification
from backend.queries.models import OrderView
from tests.backoffice.conftest import (
    audit,
    mark_failed,
    messages_of,
    new_customer,
    new_order,
    page_text,
)
from tests.fixtures.gateway import Reply
from tests.integration.jobs.conftest import wait_for_sms_status

ORDERS = "/admin/backoffice/order/"


def listed(response) -> list[int]:
    """Order ids on a list page, in order."""
    return [obj.pk for obj in response.context["cl"].result_list]


@pytest.mark.django_db
def test_filters_by_sms_status_customer_and_date_and_searches_by_code_or_name(viewer: Client):
    jane = new_customer("JANE", "Jane Wanjiru")
    otieno = new_customer("OTI-7", "Otieno Ouma")
    failed = new_order(jane, "Lamp")
    pending = new_order(jane, "Cup")
    other = new_order(otieno, "Pen")
    mark_failed(failed)

    assert listed(viewer.get(ORDERS)) == [other, pending, failed]
    assert listed(viewer.get(ORDERS, {"sms_status": "failed"})) == [failed]
    assert listed(viewer.get(ORDERS, {"sms_status": "pending"})) == [other, pending]
    by_customer = viewer.get(ORDERS, {"customer": str(otieno)})
    assert listed(by_customer) == [other]
    assert "OTI-7 (Otieno Ouma)" in page_text(by_customer)  # the chosen customer is named
    assert listed(viewer.get(ORDERS, {"customer": "x"})) == []
    assert listed(viewer.get(ORDERS, {"customer": "9" * 30})) == []  # not a 500
    assert listed(viewer.get(ORDERS, {"q": "oti-7"})) == [other]  # code: exact, any case
    assert listed(viewer.get(ORDERS, {"q": "oti"})) == [other]  # name: a part of it
    assert listed(viewer.get(ORDERS, {"q": "wanjiru"})) == [pending, failed]
    today = viewer.get(ORDERS + "?time__gte=2000-01-01+00:00:00%2B00:00")
    assert listed(today) == [other, pending, failed]
    assert listed(viewer.get(ORDERS + "?time__lt=2000-01-01+00:00:00%2B00:00")) == []


@pytest.mark.django_db
def test_the_detail_shows_the_sms_text_error_delivery_and_webhook_events(viewer: Client, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    webhook_endpoints.create_webhook_endpoint(
        webhook_endpoints.CreateWebhookEndpoint(
            owner="shop-app", url="http://127.0.0.1:9/hook", events=["order.created"]
        )
    )
    order_id = new_order(new_customer())
    mark_failed(order_id, "InvalidPhoneNumber")

    page = viewer.get(f"{ORDERS}{order_id}/change/")
    text = page_text(page)

    sms = SmsNotification.objects.get(order_id=order_id)
    assert sms.text in text
    assert "Error (sms_error): InvalidPhoneNumber" in " ".join(text.split())
    assert "<td>403 InvalidPhoneNumber</td>" in page.content.decode()  # the delivery, a table
    assert "+254712345678" in text
    assert "Jane Wanjiru" in text
    assert "<td>order.created</td>" in page.content.decode()  # the webhook event of the order


@pytest.mark.django_db
def test_an_order_without_an_sms_says_so(viewer: Client):
    """Seeded demo orders have no SMS row."""
    order_id = new_order(new_customer())
    SmsNotification.objects.filter(order_id=order_id).delete()

    text = page_text(viewer.get(f"{ORDERS}{order_id}/change/"))

    assert "No SMS was queued for this order" in text


@pytest.mark.django_db(transaction=True)
def test_send_the_sms_again_queues_one_sms_through_the_resend_command(
    operator: Client, gateway_settings, stub_worker
):
    gateway_settings.script(Reply(status_code=403))  # the first SMS is refused for good
    order_id = new_order(new_customer())
    wait_for_sms_status(order_id, "failed")
    assert OrderView.objects.get(pk=order_id).sms_error == "InvalidPhoneNumber"

    response = operator.post(
        ORDERS, {"action": "resend_sms", "_selected_action": [order_id]}, follow=True
    )

    assert response.status_code == 200
    shown = messages_of(response)
    assert any("SMS queued again: 1 of 1." in m for m in shown), shown
    row = wait_for_sms_status(order_id, "sent")
    assert row.attempts == 1  # a fresh budget, as the API's resend gives
    assert OrderView.objects.get(pk=order_id).sms_error is None
    assert len(gateway_settings.messages) == 1
    [entry] = audit(object_id=str(order_id))
    assert (entry.user.username, entry.change_message) == ("otto", "Sent the SMS again.")
    assert entry.content_type.model == "order"

    again = operator.post(
        ORDERS, {"action": "resend_sms", "_selected_action": [order_id]}, follow=True
    )

    assert any("only a failed one is re-sent" in m for m in messages_of(again))
    assert len(audit(object_id=str(order_id))) == 1  # a refusal changes nothing
    assert len(gateway_settings.messages) == 1


@pytest.mark.django_db
def test_resend_of_several_reports_each_refusal_and_resends_the_failed(operator: Client):
    customer = new_customer()
    failed, pending = new_order(customer), new_order(customer)
    mark_failed(failed)

    response = operator.post(
        ORDERS, {"action": "resend_sms", "_selected_action": [failed, pending]}, follow=True
    )

    shown = messages_of(response)
    assert any(f"#{pending}" in m and "is pending" in m for m in shown), shown
    assert SmsNotification.objects.get(order_id=failed).status == "pending"
    assert OrderView.objects.get(pk=failed).sms_status == "pending"
    assert [e.object_id for e in audit()] == [str(failed)]


@pytest.mark.django_db
def test_the_order_page_offers_send_again_to_an_operator_when_the_sms_failed(
    operator: Client, viewer: Client
):
    customer = new_customer()
    failed, pending = new_order(customer), new_order(customer)
    mark_failed(failed)
    button = b"Send the SMS again"

    assert button in operator.get(f"{ORDERS}{failed}/change/").content
    assert button not in operator.get(f"{ORDERS}{pending}/change/").content
    assert button not in viewer.get(f"{ORDERS}{failed}/change/").content
    assert viewer.post(f"{ORDERS}{failed}/resend-sms/").status_code == 403
    assert operator.get(f"{ORDERS}{failed}/resend-sms/").status_code == 405
    assert SmsNotification.objects.get(order_id=failed).status == "failed"

    response = operator.post(f"{ORDERS}{failed}/resend-sms/", follow=True)

    assert response.redirect_chain[-1][0] == f"{ORDERS}{failed}/change/"
    assert any("SMS queued again: 1 of 1." in m for m in messages_of(response))
    assert SmsNotification.objects.get(order_id=failed).status == "pending"
    assert [e.change_message for e in audit(object_id=str(failed))] == ["Sent the SMS again."]

"""`POST /api/v1/sms/delivery-reports/?token=...` as Africa's Talking calls it (form-encoded)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from backend.commands.models import SmsNotification
from backend.queries.models import OrderView
from tests.factories import make_customer, make_order

pytestmark = pytest.mark.django_db

TOKEN = "callback-secret-7f3a-0123456789abcdef"  # 32+ characters, as start-up requires
URL = "/api/v1/sms/delivery-reports/"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def _callback_token(settings):
    settings.SMS_CALLBACK_TOKEN = TOKEN


@pytest.fixture
def sent_order() -> tuple[int, str]:
    """An order whose SMS the gateway accepted as message `ATXid_1`."""
    order_id = make_order(make_customer())
    SmsNotification.objects.filter(order_id=order_id).update(
        status="sent", gateway_message_id="ATXid_1", sent_at=timezone.now()
    )
    OrderView.objects.filter(id=order_id).update(sms_status="sent")
    return order_id, "ATXid_1"


def report(client, token: str | None = TOKEN, **fields: str):
    query = "" if token is None else f"?token={token}"
    body = "&".join(f"{key}={value}" for key, value in fields.items())
    return client.post(URL + query, body, content_type=FORM)


def statuses(order_id: int) -> tuple[str, str]:
    return SmsNotification.objects.get(order_id=order_id).status, OrderView.objects.get(
        id=order_id
    ).sms_status


def test_success_marks_delivered(client, sent_order):
    order_id, message_id = sent_order

    response = report(
        client, id=message_id, status="Success", phoneNumber="%2B254712000001", networkCode="63902"
    )

    assert response.status_code == 200
    assert response.json() == {"updated": True}
    assert statuses(order_id) == ("delivered", "delivered")


@pytest.mark.parametrize("status", ["Failed", "Rejected", "AbsentSubscriber", "Expired"])
def test_final_failures_mark_failed_with_the_reason(client, sent_order, status):
    order_id, message_id = sent_order

    response = report(client, id=message_id, status=status, failureReason="UserInBlackList")

    assert response.status_code == 200
    assert statuses(order_id) == ("failed", "failed")
    assert (
        SmsNotification.objects.get(order_id=order_id).last_error
        == f"delivery report: {status} (UserInBlackList)"
    )


@pytest.mark.parametrize("status", ["Sent", "Submitted", "Buffered", "SomethingNew"])
def test_intermediate_statuses_leave_it_sent(client, sent_order, status):
    order_id, message_id = sent_order

    response = report(client, id=message_id, status=status)

    assert response.status_code == 200
    assert response.json() == {"updated": False}
    assert statuses(order_id) == ("sent", "sent")


def test_repeats_and_late_contradictions_change_nothing(client, sent_order):
    order_id, message_id = sent_order
    assert report(client, id=message_id, status="Success").json() == {"updated": True}

    again = report(client, id=message_id, status="Success")
    late_failure = report(client, id=message_id, status="Failed", failureReason="DeliveryFailure")

    assert (again.status_code, late_failure.status_code) == (200, 200)
    assert again.json() == late_failure.json() == {"updated": False}
    assert statuses(order_id) == ("delivered", "delivered")


def test_unknown_id_is_acknowledged(client, sent_order):
    order_id, _ = sent_order

    response = report(client, id="ATXid_unknown", status="Failed")

    assert response.status_code == 200
    assert response.json() == {"updated": False}
    assert statuses(order_id) == ("sent", "sent")


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", TOKEN.upper()])
def test_missing_or_wrong_token_is_403_problem(client, sent_order, token):
    order_id, message_id = sent_order

    response = report(client, token=token, id=message_id, status="Success")

    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == 403
    assert statuses(order_id) == ("sent", "sent")


def test_callbacks_are_refused_when_no_token_is_configured(client, sent_order, settings):
    settings.SMS_CALLBACK_TOKEN = None
    order_id, message_id = sent_order

    assert report(client, token="", id=message_id, status="Success").status_code == 403
    assert report(client, token="None", id=message_id, status="Success").status_code == 403
    assert statuses(order_id) == ("sent", "sent")


def test_no_bearer_token_is_needed_but_fields_are(client, sent_order):
    response = report(client, status="Success")

    assert response.status_code == 422
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["errors"] == [{"loc": ["form", "id"], "msg": "Field required"}]


def test_json_body_is_not_what_africas_talking_sends(client, sent_order):
    order_id, message_id = sent_order

    response = client.post(
        f"{URL}?token={TOKEN}",
        {"id": message_id, "status": "Success"},
        content_type="application/json",
    )

    # Contract section 6: on the callback, a body that is not form data is a 415.
    assert response.status_code == 415
    assert response["Content-Type"] == "application/problem+json"
    assert statuses(order_id) == ("sent", "sent")


@pytest.fixture
def limited(settings):
    from django.core.cache import cache, caches
    from django.core.cache.backends.locmem import LocMemCache

    settings.SMS_CALLBACK_FAILURES_PER_ADDRESS = 3
    settings.SMS_CALLBACK_FAILURE_WINDOW_S = 300
    if isinstance(caches["default"], LocMemCache):  # never FLUSHDB a shared Redis
        cache.clear()
    yield settings
    if isinstance(caches["default"], LocMemCache):
        cache.clear()


def report_from(client, address: str, token: str | None, **fields: str):
    query = "" if token is None else f"?token={token}"
    body = "&".join(f"{key}={value}" for key, value in fields.items())
    return client.post(URL + query, body, content_type=FORM, REMOTE_ADDR=address)


def test_wrong_tokens_are_limited_per_address_and_the_right_one_still_works(
    client, sent_order, limited
):
    # Issue 24: the callback had no rate limit, so a token could be guessed at line speed.
    order_id, message_id = sent_order
    for guess in range(3):
        response = report_from(client, "10.4.4.4", f"guess-{guess}", id=message_id, status="Failed")
        assert response.status_code == 403
    for token in ("guess-3", None):
        response = report_from(client, "10.4.4.4", token, id=message_id, status="Failed")
        assert response.status_code == 429, response.content
        assert response["Content-Type"].startswith("application/problem+json")
        assert 1 <= int(response["Retry-After"]) <= 300
    # Another address is not affected, and the right token from the limited one still works.
    assert report_from(client, "10.4.4.5", "guess", id=message_id, status="x").status_code == 403
    response = report_from(client, "10.4.4.4", TOKEN, id=message_id, status="Success")
    assert response.status_code == 200
    assert statuses(order_id) == ("delivered", "delivered")

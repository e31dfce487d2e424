"""The customers screen goes through backend/commands/customers.py: a change made in the admin
reaches the read models and the outbox exactly as the API's would."""

from __future__ import annotations

import json

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION
from django.test import Client

from backend.commands import webhook_endpoints
from backend.commands.models import Customer, WebhookDelivery
from backend.queries.models import CustomerView, OrderView
from tests.backoffice.conftest import audit, messages_of, new_customer, new_order, page_text

pytestmark = pytest.mark.django_db

CUSTOMERS = "/admin/backoffice/customer/"
EVENTS = ["customer.created", "customer.updated", "customer.deleted"]


@pytest.fixture
def endpoint(settings) -> int:
    """A webhook endpoint subscribed to the customer events (the API's create command)."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    return webhook_endpoints.create_webhook_endpoint(
        webhook_endpoints.CreateWebhookEndpoint(
            owner="integration", url="http://127.0.0.1:9/hook", events=EVENTS
        )
    )


def events(endpoint_id: int, after: int = 0) -> list[tuple[str, dict]]:
    """(type, data) of the endpoint's events, from its delivery row `after` on."""
    rows = WebhookDelivery.objects.filter(endpoint_id=endpoint_id).order_by("id")[after:]
    return [(row.event_type, json.loads(row.body)["data"]) for row in rows]


def change_form(client: Client, customer_id: int) -> dict[str, str]:
    """The change form's fields as the page renders them (what a browser would post back)."""
    form = client.get(f"{CUSTOMERS}{customer_id}/change/").context["adminform"].form
    return {name: form[name].value() for name in ("name", "code", "phone_number")}


def test_editing_a_customer_updates_its_orders_read_model_and_writes_the_event(
    operator: Client, endpoint: int
):
    customer_id = new_customer("JANE", "Jane Wanjiru")
    orders = [new_order(customer_id, "Lamp"), new_order(customer_id, "Cup")]
    before = Customer.objects.get(pk=customer_id).updated_at
    seen = len(events(endpoint))
    data = {**change_form(operator, customer_id), "name": "  Jane W. Kamau "}

    response = operator.post(f"{CUSTOMERS}{customer_id}/change/", data)

    assert response.status_code == 302, page_text(response)
    customer = Customer.objects.get(pk=customer_id)
    assert customer.name == "Jane W. Kamau"  # trimmed, as the API does
    assert customer.updated_at > before
    view = CustomerView.objects.get(pk=customer_id)
    assert (view.name, view.updated_at, view.order_count) == (
        "Jane W. Kamau",
        customer.updated_at,
        2,
    )
    names = OrderView.objects.filter(pk__in=orders).values_list("customer_name", flat=True)
    assert list(names) == ["Jane W. Kamau", "Jane W. Kamau"]
    [(kind, data_sent)] = events(endpoint, after=seen)
    assert kind == "customer.updated"
    assert (data_sent["id"], data_sent["name"], data_sent["order_count"]) == (
        customer_id,
        "Jane W. Kamau",
        2,
    )
    [entry] = audit(object_id=str(customer_id))
    assert (entry.action_flag, entry.user.username) == (CHANGE, "otto")
    assert entry.get_change_message() == "Changed Name."


def test_saving_without_a_change_writes_nothing(operator: Client, endpoint: int):
    customer_id = new_customer()
    before = Customer.objects.get(pk=customer_id).updated_at
    seen = len(events(endpoint))

    operator.post(f"{CUSTOMERS}{customer_id}/change/", change_form(operator, customer_id))

    assert Customer.objects.get(pk=customer_id).updated_at == before
    assert events(endpoint, after=seen) == []


def test_creating_a_customer_goes_through_the_create_command(operator: Client, endpoint: int):
    response = operator.post(
        f"{CUSTOMERS}add/", {"name": "Otieno", "code": "OTI-1", "phone_number": "0712 345 678"}
    )

    assert response.status_code == 302, page_text(response)
    customer = Customer.objects.get(code="OTI-1")
    assert customer.phone_number == "+254712345678"  # E.164 with SMS_DEFAULT_REGION
    assert CustomerView.objects.filter(pk=customer.pk, name="Otieno").exists()
    assert [kind for kind, _ in events(endpoint)] == ["customer.created"]
    [entry] = audit(object_id=str(customer.pk))
    assert entry.action_flag == ADDITION


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "X", "code": "jane", "phone_number": "+254712345678"}, "code"),  # taken, any case
        ({"name": "X", "code": "has space", "phone_number": "+254712345678"}, "code"),
        ({"name": "X", "code": "NEW", "phone_number": "12"}, "phone_number"),
        ({"name": "   ", "code": "NEW", "phone_number": "+254712345678"}, "name"),
    ],
)
def test_the_api_rules_refuse_bad_input_on_the_form(operator: Client, endpoint: int, data, field):
    new_customer("JANE")
    seen = len(events(endpoint))

    response = operator.post(f"{CUSTOMERS}add/", data)

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert Customer.objects.count() == CustomerView.objects.count() == 1
    assert events(endpoint, after=seen) == []
    assert audit() == []


def test_a_customer_with_orders_cannot_be_deleted(operator: Client, endpoint: int):
    customer_id = new_customer()
    new_order(customer_id)
    seen = len(events(endpoint))

    page = operator.get(f"{CUSTOMERS}{customer_id}/delete/")
    posted = operator.post(f"{CUSTOMERS}{customer_id}/delete/", {"post": "yes"})

    assert "Cannot delete" in page_text(page)
    assert posted.status_code == 200  # the same refusal, nothing deleted
    assert Customer.objects.filter(pk=customer_id).exists()
    assert CustomerView.objects.filter(pk=customer_id).exists()
    assert events(endpoint, after=seen) == []
    assert audit() == []


def test_deleting_a_customer_goes_through_the_delete_command(operator: Client, endpoint: int):
    customer_id = new_customer()
    seen = len(events(endpoint))

    response = operator.post(f"{CUSTOMERS}{customer_id}/delete/", {"post": "yes"}, follow=True)

    assert response.status_code == 200
    assert not Customer.objects.filter(pk=customer_id).exists()
    assert not CustomerView.objects.filter(pk=customer_id).exists()
    assert [kind for kind, _ in events(endpoint, after=seen)] == ["customer.deleted"]
    [entry] = audit(object_id=str(customer_id))
    assert (entry.action_flag, entry.object_repr) == (DELETION, "JANE (Jane Wanjiru)")


def test_an_order_placed_after_the_confirmation_page_stops_the_delete(
    operator: Client, endpoint: int, monkeypatch
):
    """The handler's own check decides (the customer row locked), not the admin's page."""
    from backend.backoffice.admin import CustomerAdmin

    customer_id = new_customer()
    seen = len(events(endpoint))
    real = CustomerAdmin.get_deleted_objects

    def placed_meanwhile(self, objs, request):  # the page was computed, then an order came in
        found = real(self, objs, request)
        new_order(customer_id)
        return found

    monkeypatch.setattr(CustomerAdmin, "get_deleted_objects", placed_meanwhile)

    response = operator.post(f"{CUSTOMERS}{customer_id}/delete/", {"post": "yes"}, follow=True)

    assert any("has orders and cannot be deleted" in m for m in messages_of(response))
    assert Customer.objects.filter(pk=customer_id).exists()
    assert events(endpoint, after=seen) == []
    assert audit() == []


def test_the_customer_list_searches_code_and_name_and_links_its_orders(viewer: Client):
    jane = new_customer("JANE", "Jane Wanjiru")
    new_customer("OTI-7", "Otieno Ouma")
    new_order(jane)

    found = viewer.get(CUSTOMERS, {"q": "wanj"})

    assert [c.pk for c in found.context["cl"].result_list] == [jane]
    assert f"/admin/backoffice/order/?customer={jane}" in found.content.decode()
    assert [c.code for c in viewer.get(CUSTOMERS, {"q": "oti"}).context["cl"].result_list] == [
        "OTI-7"
    ]


def test_a_code_taken_after_the_form_was_checked_is_refused_by_the_handler(
    operator: Client, endpoint: int, monkeypatch
):
    """The handler's unique constraint decides: the form's check is only for a readable error."""
    from backend.backoffice.admin import CustomerAdmin

    customer_id = new_customer("JANE")
    seen = len(events(endpoint))
    real = CustomerAdmin.save_form

    def taken_meanwhile(self, request, form, change):  # the form passed, then someone took it
        new_customer("NEWCODE", "Someone Else")
        return real(self, request, form, change)

    monkeypatch.setattr(CustomerAdmin, "save_form", taken_meanwhile)
    data = {**change_form(operator, customer_id), "code": "newcode"}

    response = operator.post(f"{CUSTOMERS}{customer_id}/change/", data, follow=True)

    assert any("already exists" in m for m in messages_of(response)), messages_of(response)
    assert Customer.objects.get(pk=customer_id).code == "JANE"
    # No customer.updated: the form's transaction rolled back whole (the other customer's write
    # shared this test's connection, so it went with it).
    assert [kind for kind, _ in events(endpoint, after=seen)] == []
    assert audit() == []

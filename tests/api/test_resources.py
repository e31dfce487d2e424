"""Each resource is described once (`backend.queries.resources`): every place that shows it
agrees with that description, so a field forgotten in one of them fails here."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import transaction

from backend.commands import webhook_endpoints as webhooks
from backend.commands.models import SmsNotification, WebhookDelivery
from backend.projections import rebuild_all
from backend.queries import customers, orders
from backend.queries.models import CustomerView, OrderView
from backend.queries.resources import CustomerOut, CustomerPage, OrderOut, OrderPage

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("resource", "projection"), [(OrderOut, OrderView), (CustomerOut, CustomerView)]
)
def test_the_projection_has_a_column_for_each_field_and_no_other(resource, projection):
    columns = {field.column: field for field in projection._meta.concrete_fields}
    assert set(columns) == set(resource.model_fields)
    for name, info in resource.model_fields.items():
        nullable = not info.is_required() or type(None) in getattr(info.annotation, "__args__", ())
        assert columns[name].null == nullable, name


@pytest.fixture
def subscribed(settings) -> int:
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    return webhooks.create_webhook_endpoint(
        webhooks.CreateWebhookEndpoint(
            owner="test-user",
            url="http://127.0.0.1:9/h",
            events=["order.created", "customer.updated"],
        )
    )


@pytest.mark.parametrize("note", ["Leave at the gate", None])
def test_an_order_reads_the_same_everywhere(api, subscribed, note):
    customer = api.post(
        "customers/", {"name": "Jane", "code": "JANE-9", "phone_number": "0712345678"}
    ).json()
    body = {"customer_id": customer["id"], "item": "Maize \u2013 2kg", "amount": "1500"}
    if note is not None:
        body["note"] = f"  {note} "
    created = api.post("orders/", body)
    assert created.status_code == 201, created.content
    order = created.json()
    assert set(order) == set(OrderOut.model_fields)
    assert order["note"] == note  # trimmed; null when absent
    assert order["amount"] == "1500.00"
    assert api.get(f"orders/{order['id']}/").json() == order
    assert api.get("orders/").json()["items"] == [order]
    [delivery] = WebhookDelivery.objects.filter(event_type="order.created")
    assert json.loads(delivery.body)["data"] == order
    # The note is the API's, not the customer's: the SMS does not carry it.
    [sms] = SmsNotification.objects.all()
    assert "gate" not in sms.text


def test_a_customer_reads_the_same_everywhere(api, subscribed):
    created = api.post(
        "customers/", {"name": "Amina", "code": "AMINA", "phone_number": "0712345678"}
    ).json()
    assert set(created) == set(CustomerOut.model_fields)
    api.post("orders/", {"customer_id": created["id"], "item": "Tea", "amount": 2})
    updated = api.call("PATCH", f"customers/{created['id']}/", {"name": "Amina A."})
    assert updated.status_code == 200
    customer = updated.json()
    assert customer["order_count"] == 1 and customer["total_amount"] == "2.00"
    assert api.get(f"customers/{created['id']}/").json() == customer
    assert api.get("customers/").json()["items"] == [customer]
    [delivery] = WebhookDelivery.objects.filter(event_type="customer.updated")
    assert json.loads(delivery.body)["data"] == customer


def test_the_rebuild_writes_every_column_the_writes_wrote(api):
    customer = api.post(
        "customers/", {"name": "Jane", "code": "JANE-2", "phone_number": "0712345678"}
    ).json()
    for n, note in enumerate(["first", None, ""]):
        body = {"customer_id": customer["id"], "item": f"Item {n}", "amount": Decimal("10.5")}
        body["amount"] = str(body["amount"])
        if note is not None:
            body["note"] = note
        assert api.post("orders/", body).status_code == 201
    incremental = {
        view: sorted(view.objects.values_list(*[f.attname for f in view._meta.concrete_fields]))
        for view in (OrderView, CustomerView)
    }
    note_at = [f.attname for f in OrderView._meta.concrete_fields].index("note")
    assert {row[note_at] for row in incremental[OrderView]} == {"first", None, ""}
    with transaction.atomic():
        rebuild_all()
        rebuilt = {
            view: sorted(view.objects.values_list(*[f.attname for f in view._meta.concrete_fields]))
            for view in (OrderView, CustomerView)
        }
        transaction.set_rollback(True)
    assert rebuilt == incremental


@pytest.mark.parametrize(
    "note", ["x" * 501, "nul\x00", 5, ["a"]], ids=["too-long", "nul", "number", "list"]
)
def test_a_bad_note_is_a_422_and_places_nothing(api, note):
    customer = api.post(
        "customers/", {"name": "Jane", "code": "JANE-3", "phone_number": "0712345678"}
    ).json()
    response = api.post(
        "orders/", {"customer_id": customer["id"], "item": "Tea", "amount": 1, "note": note}
    )
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["loc"][-1] == "note"
    assert not OrderView.objects.exists()


def test_a_500_character_note_is_kept_whole(api):
    customer = api.post(
        "customers/", {"name": "Jane", "code": "JANE-4", "phone_number": "0712345678"}
    ).json()
    note = "\u00e9" * 500
    response = api.post(
        "orders/", {"customer_id": customer["id"], "item": "Tea", "amount": 1, "note": note}
    )
    assert response.status_code == 201, response.content
    assert api.get(f"orders/{response.json()['id']}/").json()["note"] == note


AWKWARD_TEXTS = [
    "Jane",
    'quote " back \\ slash',
    "ctl \x01\x02\x08\t\n\x1f\x7f",
    "\u2028 \U0001f600 é",
    "50%'s </b>",
    "",
]
AWKWARD_TIMES = [
    datetime(2026, 11, 27, 8, 30, tzinfo=UTC),
    datetime(2026, 11, 27, 8, 30, 0, 1, tzinfo=UTC),
    datetime(2026, 11, 27, 8, 30, 59, 123000, tzinfo=UTC),
    datetime(1999, 1, 2, 3, 4, 5, 999999, tzinfo=timezone(timedelta(hours=3))),
]


def _as_pydantic_writes(resource, row) -> bytes:
    return resource.model_validate(
        {name: getattr(row, name) for name in resource.model_fields}
    ).body()


def test_the_reads_write_each_resource_byte_for_byte_as_pydantic_does():
    """The reads send PostgreSQL's rendering (`queries.sql.document`); the writes and the ETags
    of `If-Match` rely on it being pydantic's, to the byte, for any value a column can hold."""
    rows = []
    for n, (text, time) in enumerate(zip(AWKWARD_TEXTS * 2, AWKWARD_TIMES * 3, strict=False)):
        rows.append(
            OrderView.objects.create(
                id=n + 1,
                customer_id=7,
                customer_code=f"C-{n}",
                customer_name=text,
                item=text or "x",
                amount=[Decimal("0"), Decimal("0.5"), Decimal("9999999999.99"), Decimal("12.30")][
                    n % 4
                ],
                note=[None, text][n % 2],
                time=time,
                sms_status="failed",
                sms_error=[None, text][n % 2],
            )
        )
        CustomerView.objects.create(
            id=n + 1,
            name=text,
            code=f"C-{n}",
            phone_number="+254712345678",
            created_at=time,
            updated_at=AWKWARD_TIMES[-1],
            order_count=n,
            total_amount=Decimal("1234567890123456.78"),
            last_order_at=[None, time][n % 2],
        )
    for row in rows:
        row.refresh_from_db()  # the values as the columns hold them
        assert orders.get_order(row.id) == _as_pydantic_writes(OrderOut, row)
        customer = CustomerView.objects.get(id=row.id)
        assert customers.get_customer(row.id) == _as_pydantic_writes(CustomerOut, customer)
    for page in (orders.list_orders(limit=5), customers.list_customers(limit=5)):
        model = OrderPage if b'"customer_code"' in page else CustomerPage
        assert model.model_validate_json(page).body() == page
        assert json.loads(page)["next_cursor"] is not None

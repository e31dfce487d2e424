"""The one-statement order write (PostgreSQL) against the ORM version it replaced on the hot path.

`_place_order_orm` is the reference (and the SQLite path): every row the SQL writes must equal
the row the ORM writes for the same order, field by field, including the webhook event and the
idempotency record; the races between the read and the write must end in a correct order.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, models
from django.utils import timezone

from backend.commands import orders, outbox
from backend.commands.idempotency import ClaimLost, IdempotencyClaim, claim_key
from backend.commands.models import (
    Customer,
    IdempotencyRecord,
    Order,
    SmsNotification,
    WebhookDelivery,
    WebhookEndpoint,
)
from backend.commands.orders import PlaceOrder
from backend.queries.models import CustomerView, OrderView
from tests.factories import make_customer

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the SQL path is PostgreSQL's"),
]

# Fields that differ between two orders by construction (ids, clocks, per-event ids).
_VARYING = {"id", "order", "order_id", "customer", "customer_id", "time", "created_at"}
_VARYING |= {"updated_at", "event_id", "subject", "last_order_at", "claim_token", "key"}
_VARYING |= {"body", "resource_id"}  # body: compared below as JSON, without ids and times


def _fields(row: models.Model) -> dict[str, Any]:
    return {
        f.name: getattr(row, f.attname)
        for f in row._meta.concrete_fields
        if f.name not in _VARYING and f.attname not in _VARYING
    }


def _endpoint() -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        url="https://hooks.example.com/duka",
        events=["order.created"],
        secret="whsec_" + "A" * 43 + "=",
        created_at=timezone.now(),
    )


def _claim(key: str) -> IdempotencyClaim:
    outcome = claim_key(subject="s", endpoint="orders.create", key=key, fingerprint="f" * 64)
    assert isinstance(outcome, IdempotencyClaim)
    return outcome


def _written(order_id: int, customer_id: int) -> dict[str, Any]:
    sms = SmsNotification.objects.get(order_id=order_id)
    delivery = WebhookDelivery.objects.get(subject=f"order:{order_id}")
    body = json.loads(delivery.body)
    data = body.pop("data")
    return {
        "order": _fields(Order.objects.get(pk=order_id)),
        "sms": {**_fields(sms), "text": sms.text.replace(f"#{order_id}", "#N")},
        "view": _fields(OrderView.objects.get(pk=order_id)),
        "customer_view": _fields(CustomerView.objects.get(pk=customer_id)),
        "delivery": _fields(delivery),
        "event": {"type": body["type"], "keys": sorted(body)},
        "data": {k: v for k, v in data.items() if k not in {"id", "customer_id", "time"}},
        "idempotency": _fields(IdempotencyRecord.objects.get(resource_id=order_id)),
    }


def test_sql_writes_the_rows_the_orm_writes():
    _endpoint()
    fast = make_customer(name="Amina Odhiambo", code="A-1", phone_number="+254712000001")
    slow = make_customer(name="Amina Odhiambo", code="A-1x", phone_number="+254712000001")
    for customer in (fast, slow):  # aggregates that already hold an order
        orders.place_order(PlaceOrder(customer_id=customer, item="Seed", amount=Decimal("1")))
    cmd = {"item": "  Maize flour 2kg  ", "amount": Decimal("1234.5")}

    by_sql = orders.place_order(PlaceOrder(customer_id=fast, **cmd), idempotency=_claim("k1"))
    by_orm = orders._place_order_orm(PlaceOrder(customer_id=slow, **cmd), idempotency=_claim("k2"))

    sql_rows, orm_rows = _written(by_sql.id, fast), _written(by_orm.id, slow)
    for rows, code in ((sql_rows, "A-1"), (orm_rows, "A-1x")):
        assert rows["view"].pop("customer_code") == code
        assert rows["data"].pop("customer_code") == code
        assert rows["customer_view"].pop("code") == code
    assert sql_rows == orm_rows
    assert sql_rows["order"] == {"item": "Maize flour 2kg", "amount": Decimal("1234.50")}
    assert sql_rows["customer_view"]["order_count"] == 2
    # What the command returns (the 201 body) is what a read of the view gives.
    view = OrderView.objects.get(pk=by_sql.id)
    assert (by_sql.amount, by_sql.time, by_sql.customer_name) == (
        view.amount,
        view.time,
        view.customer_name,
    )
    assert str(by_sql.amount) == str(view.amount) == "1234.50"
    # Outside a transaction, as in a request: both statements ran as one libpq call each.
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE name LIKE 'duka_%'")
        texts = [text for (text,) in cursor.fetchall()]
    assert any("nextval(pg_get_serial_sequence('orders', 'id'))" in text for text in texts)
    assert any("INSERT INTO" in text and "k AS (" in text and "w AS (" in text for text in texts)


def test_without_subscribers_no_event_row_and_aggregates_are_exact():
    customer = make_customer()
    for amount in ("10.00", "0.01", "5"):
        orders.place_order(PlaceOrder(customer_id=customer, item="x", amount=Decimal(amount)))
    assert not WebhookDelivery.objects.exists()
    view = CustomerView.objects.get(pk=customer)
    last = Order.objects.filter(customer_id=customer).order_by("-time").first()
    assert (view.order_count, view.total_amount, view.last_order_at) == (
        3,
        Decimal("15.01"),
        last.time,
    )


def test_customer_renamed_between_read_and_write_gets_the_new_name(monkeypatch):
    customer = make_customer(name="Old Name", phone_number="+254712000002")
    compose = outbox.order_sms_text
    drawn: list[int] = []

    def rename_once(**kwargs: Any) -> str:
        drawn.append(kwargs["order_id"])
        if len(drawn) == 1:  # another request renames the customer right after our read
            Customer.objects.filter(pk=customer).update(name="New Name")
        return compose(**kwargs)

    monkeypatch.setattr(outbox, "order_sms_text", rename_once)
    placed = orders.place_order(PlaceOrder(customer_id=customer, item="x", amount=Decimal("2")))

    assert len(drawn) == 2 and placed.id == drawn[1]
    assert not Order.objects.filter(pk=drawn[0]).exists()  # nothing written for the stale read
    assert placed.customer_name == "New Name"
    assert OrderView.objects.get(pk=placed.id).customer_name == "New Name"
    assert SmsNotification.objects.get(order_id=placed.id).text.startswith("Hi New")
    assert CustomerView.objects.get(pk=customer).order_count == 1


def test_a_customer_that_keeps_changing_falls_back_to_the_locking_path(monkeypatch):
    customer = make_customer(phone_number="+254712000003")
    compose = outbox.order_sms_text
    calls = iter(range(100))

    def change(**kwargs: Any) -> str:
        n = next(calls)
        if n < orders._RACE_RETRIES:
            Customer.objects.filter(pk=customer).update(phone_number=f"+25471200010{n}")
        return compose(**kwargs)

    monkeypatch.setattr(outbox, "order_sms_text", change)
    placed = orders.place_order(PlaceOrder(customer_id=customer, item="x", amount=Decimal("2")))

    assert next(calls) == orders._RACE_RETRIES + 1  # three reads, then the ORM path
    sms = SmsNotification.objects.get(order_id=placed.id)
    assert sms.recipient == f"+25471200010{orders._RACE_RETRIES - 1}"
    assert Order.objects.count() == 1


def test_a_lost_idempotency_claim_writes_nothing():
    customer = make_customer()
    claim = _claim("lost")
    IdempotencyRecord.objects.filter(pk=claim.record_id).update(claim_token=uuid.uuid4())
    with pytest.raises(ClaimLost):
        orders.place_order(
            PlaceOrder(customer_id=customer, item="x", amount=Decimal("1")), idempotency=claim
        )
    assert not Order.objects.exists()
    assert not SmsNotification.objects.exists()
    assert not OrderView.objects.exists()
    assert CustomerView.objects.get(pk=customer).order_count == 0


def test_deleted_or_disabled_endpoints_get_no_event_row(monkeypatch):
    kept, disabled = _endpoint(), _endpoint()
    customer = make_customer()
    compose = outbox.order_sms_text

    def disable(**kwargs: Any) -> str:  # after the read found both endpoints subscribed
        WebhookEndpoint.objects.filter(pk=disabled.pk).update(enabled=False)
        return compose(**kwargs)

    monkeypatch.setattr(outbox, "order_sms_text", disable)
    placed = orders.place_order(PlaceOrder(customer_id=customer, item="x", amount=Decimal("1")))
    endpoints = WebhookDelivery.objects.filter(subject=f"order:{placed.id}")
    assert list(endpoints.values_list("endpoint_id", flat=True)) == [kept.pk]


def test_the_write_is_one_statement_after_one_read(django_assert_num_queries):
    customer = make_customer()
    connection.ensure_connection()
    with django_assert_num_queries(2) as captured:
        orders.place_order(PlaceOrder(customer_id=customer, item="x", amount=Decimal("1")))
    assert captured.captured_queries[1]["sql"].lstrip().startswith("WITH c AS")

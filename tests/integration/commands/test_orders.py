import threading
from decimal import Decimal

import pytest
from django.db import connection

from backend.commands.models import Order, SmsNotification
from backend.commands.orders import PlaceOrder, place_order
from backend.errors import InvalidField
from backend.queries.models import CustomerView, OrderView
from tests.factories import make_customer, make_order


@pytest.mark.django_db
def test_place_order_writes_order_projections_and_outbox():
    cid = make_customer(name="Jane", code="J1", phone_number="+254712345678")
    oid = place_order(PlaceOrder(customer_id=cid, item="Widget", amount=Decimal("1500"))).id
    order = Order.objects.get(pk=oid)
    view = OrderView.objects.get(pk=oid)
    customer = CustomerView.objects.get(pk=cid)
    sms = SmsNotification.objects.get(order_id=oid)
    assert (order.item, order.amount) == ("Widget", Decimal("1500.00"))
    assert (view.customer_code, view.customer_name, view.item, view.amount) == (
        "J1",
        "Jane",
        "Widget",
        Decimal("1500.00"),
    )
    assert view.time == order.time
    assert view.sms_status == sms.status == "pending"
    assert (customer.order_count, customer.total_amount, customer.last_order_at) == (
        1,
        Decimal("1500.00"),
        order.time,
    )
    assert sms.recipient == "+254712345678"
    assert f"#{oid}" in sms.text and "1500.00" in sms.text


@pytest.mark.django_db
def test_unknown_customer_is_an_invalid_field_and_writes_nothing():
    with pytest.raises(InvalidField) as excinfo:
        place_order(PlaceOrder(customer_id=424242, item="x", amount=Decimal("1.00")))
    assert excinfo.value.field == "customer_id"
    assert not Order.objects.exists()
    assert not SmsNotification.objects.exists()


@pytest.mark.django_db
def test_aggregates_add_up():
    cid = make_customer()
    for amount in ["0.01", "9999999999.99", "12.50"]:
        make_order(cid, amount=amount)
    view = CustomerView.objects.get(pk=cid)
    assert view.order_count == 3
    assert view.total_amount == Decimal("10000000012.50")


@pytest.mark.django_db(transaction=True)
def test_concurrent_orders_for_one_customer_stay_exact():
    cid = make_customer()
    errors: list[BaseException] = []
    barrier = threading.Barrier(50, timeout=30)

    def worker(i: int) -> None:
        try:
            barrier.wait()
            make_order(cid, amount=f"{i + 1}.25")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert not any(t.is_alive() for t in threads)
    view = CustomerView.objects.get(pk=cid)
    assert view.order_count == 50 == Order.objects.filter(customer_id=cid).count()
    assert view.total_amount == sum(Decimal(f"{i + 1}.25") for i in range(50))
    assert view.last_order_at == Order.objects.filter(customer_id=cid).latest("time").time
    assert SmsNotification.objects.count() == 50


@pytest.mark.django_db
def test_last_order_at_is_the_latest_order_time_even_when_the_clock_steps_back(monkeypatch):
    from datetime import timedelta

    from backend.commands import orders as order_commands
    from backend.commands.clock import now_ms
    from backend.projections import rebuild_all

    cid = make_customer()
    later = now_ms()
    monkeypatch.setattr(order_commands, "now_ms", lambda: later)
    make_order(cid)
    monkeypatch.setattr(order_commands, "now_ms", lambda: later - timedelta(minutes=5))
    make_order(cid)  # NTP stepped the clock back between the two orders

    incremental = CustomerView.objects.get(pk=cid).last_order_at
    rebuild_all()
    assert incremental == later == CustomerView.objects.get(pk=cid).last_order_at

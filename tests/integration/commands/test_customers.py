from decimal import Decimal

import pytest

from backend.commands.customers import (
    CreateCustomer,
    DeleteCustomer,
    PatchCustomer,
    ReplaceCustomer,
    create_customer,
    delete_customer,
    patch_customer,
    replace_customer,
)
from backend.commands.models import Customer
from backend.errors import Conflict, InvalidField, NotFound
from backend.queries.models import CustomerView, OrderView
from tests.factories import make_customer, make_order

pytestmark = pytest.mark.django_db


def test_create_writes_table_and_projection():
    cid = create_customer(
        CreateCustomer(name="  Jane Doe ", code="JD-1", phone_number="0712 345 678")
    )
    customer = Customer.objects.get(pk=cid)
    view = CustomerView.objects.get(pk=cid)
    assert (customer.name, customer.code, customer.phone_number) == (
        "Jane Doe",
        "JD-1",
        "+254712345678",
    )
    assert (view.name, view.code, view.phone_number) == ("Jane Doe", "JD-1", "+254712345678")
    assert (view.order_count, view.total_amount, view.last_order_at) == (0, Decimal("0.00"), None)


def test_code_is_unique_ignoring_case():
    make_customer(code="ABC")
    with pytest.raises(Conflict, match=r"ABC|abc"):
        create_customer(CreateCustomer(name="X", code="abc", phone_number="+254712345678"))
    assert Customer.objects.count() == CustomerView.objects.count() == 1


def test_invalid_phone_is_an_invalid_field_and_writes_nothing():
    with pytest.raises(InvalidField) as excinfo:
        create_customer(CreateCustomer(name="X", code="X1", phone_number="12"))
    assert excinfo.value.field == "phone_number"
    assert not Customer.objects.exists()
    assert not CustomerView.objects.exists()


def test_replace_and_patch_reach_the_orders_view():
    cid = make_customer(name="Old", code="OLD")
    oid = make_order(cid)
    replace_customer(
        ReplaceCustomer(customer_id=cid, name="New", code="NEW", phone_number="+254700000001")
    )
    order = OrderView.objects.get(pk=oid)
    assert (order.customer_name, order.customer_code) == ("New", "NEW")
    patch_customer(PatchCustomer(customer_id=cid, name="Newer"))
    view = CustomerView.objects.get(pk=cid)
    assert (view.name, view.code, view.phone_number) == ("Newer", "NEW", "+254700000001")
    assert OrderView.objects.get(pk=oid).customer_name == "Newer"
    assert view.updated_at >= view.created_at


def test_patch_to_a_taken_code_conflicts_and_changes_nothing():
    make_customer(code="TAKEN")
    cid = make_customer(code="MINE", name="Mine")
    with pytest.raises(Conflict):
        patch_customer(PatchCustomer(customer_id=cid, code="taken", name="Changed"))
    assert CustomerView.objects.get(pk=cid).name == "Mine"
    assert Customer.objects.get(pk=cid).code == "MINE"


def test_missing_customer_is_not_found():
    with pytest.raises(NotFound):
        patch_customer(PatchCustomer(customer_id=999999, name="x"))
    with pytest.raises(NotFound):
        delete_customer(DeleteCustomer(customer_id=999999))


def test_delete_frees_the_code_and_removes_the_view():
    cid = make_customer(code="GONE")
    delete_customer(DeleteCustomer(customer_id=cid))
    assert not CustomerView.objects.filter(pk=cid).exists()
    assert make_customer(code="gone")


def test_delete_with_orders_conflicts():
    cid = make_customer()
    make_order(cid)
    with pytest.raises(Conflict, match="has orders"):
        delete_customer(DeleteCustomer(customer_id=cid))
    assert CustomerView.objects.filter(pk=cid).exists()

from decimal import Decimal

import pytest

from backend.commands.models import Order, SmsNotification

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer(api):
    return api.post(
        "customers/", {"name": "Jane", "code": "J", "phone_number": "+254712345678"}
    ).json()


def test_place_order(api, customer):
    response = api.post(
        "orders/", {"customer_id": customer["id"], "item": "Widget", "amount": 1500}
    )
    assert response.status_code == 201, response.content
    order = response.json()
    assert response["Location"] == f"/api/v1/orders/{order['id']}/"
    assert order["amount"] == "1500.00"
    assert order["sms_status"] in {"pending", "sent", "delivered", "failed"}
    assert (order["customer_code"], order["customer_name"]) == ("J", "Jane")
    assert order["time"].endswith("Z")
    assert api.get(f"orders/{order['id']}/").json()["id"] == order["id"]
    view = api.get(f"customers/{customer['id']}/").json()
    assert (view["order_count"], view["total_amount"], view["last_order_at"]) == (
        1,
        "1500.00",
        order["time"],
    )


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("0.10", "0.10"),
        (0.1, "0.10"),
        ("9999999999.99", "9999999999.99"),
        (12, "12.00"),
        ("1.5", "1.50"),
    ],
)
def test_money_is_exact(api, customer, sent, stored):
    response = api.post("orders/", {"customer_id": customer["id"], "item": "x", "amount": sent})
    assert response.status_code == 201, response.content
    assert response.json()["amount"] == stored
    assert Order.objects.get(pk=response.json()["id"]).amount == Decimal(stored)


@pytest.mark.parametrize(
    "amount",
    [0, -1, "0.00", "1.001", "10000000000.00", "abc", None, True, "NaN", "Infinity", [1], 1e400],
)
def test_bad_amounts_are_422_and_write_nothing(api, customer, amount):
    response = api.post("orders/", {"customer_id": customer["id"], "item": "x", "amount": amount})
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["loc"] == ["body", "amount"]
    assert not Order.objects.exists()


def test_unknown_customer_is_422_on_customer_id(api):
    response = api.post("orders/", {"customer_id": 987654, "item": "x", "amount": "1.00"})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"loc": ["body", "customer_id"], "msg": "Customer 987654 does not exist."}
    ]
    assert not SmsNotification.objects.exists()


def test_list_orders_with_filters_and_cursor(api, customer):
    other = api.post(
        "customers/", {"name": "O", "code": "O", "phone_number": "+254712345679"}
    ).json()
    ids = [
        api.post("orders/", {"customer_id": c["id"], "item": "x", "amount": "1"}).json()["id"]
        for c in (customer, other, customer, other, customer)
    ]
    page = api.get("orders/?limit=2").json()
    assert [o["id"] for o in page["items"]] == ids[::-1][:2]
    rest = api.get(f"orders/?limit=200&cursor={page['next_cursor']}").json()
    assert [o["id"] for o in rest["items"]] == ids[::-1][2:]
    mine = api.get(f"orders/?customer_id={customer['id']}").json()["items"]
    assert [o["id"] for o in mine] == [ids[4], ids[2], ids[0]]
    t = mine[1]["time"]
    since = api.get("orders/", QUERY_STRING=f"since={t}".replace("+", "%2B")).json()["items"]
    assert ids[2] in [o["id"] for o in since]
    until = api.get("orders/", QUERY_STRING=f"until={t}").json()["items"]
    assert ids[2] not in [o["id"] for o in until]


def test_rename_reaches_orders(api, customer):
    oid = api.post("orders/", {"customer_id": customer["id"], "item": "x", "amount": "1"}).json()[
        "id"
    ]
    api.call("PATCH", f"customers/{customer['id']}/", {"name": "Janet", "code": "JT"})
    order = api.get(f"orders/{oid}/").json()
    assert (order["customer_name"], order["customer_code"]) == ("Janet", "JT")

"""Queries per request on the benchmarked endpoints (docs/performance.md states and explains them).

A query count creeping up (an N+1, a lazy relation, a lookup moved into the request path) is the
usual way an endpoint gets slower, and the benchmark only catches it later and noisily; these
tests catch it at once. Only Django's queries are counted (what `django_assert_num_queries`
sees), with the database connection already open, as it is in a long-running web worker.
"""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer_id(api) -> int:
    response = api.post(
        "customers/", {"name": "Jane Wanjiru", "code": "JANE-1", "phone_number": "+254712345678"}
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


@pytest.fixture
def order_ids(api, customer_id: int) -> list[int]:
    ids = []
    for n in range(60):  # more than one page of 50
        response = api.post(
            "orders/", {"customer_id": customer_id, "item": f"Item {n}", "amount": "10.50"}
        )
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    return ids


def _warm(api) -> None:
    """Open the connection first: a worker's persistent connection is already open."""
    connection.ensure_connection()
    assert api.get("customers/?limit=1").status_code == 200


def test_healthz_makes_no_query(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/healthz").status_code == 200


def test_order_detail_is_one_query(api, order_ids, django_assert_num_queries):
    _warm(api)
    with django_assert_num_queries(1):
        response = api.get(f"orders/{order_ids[0]}/")
    assert response.status_code == 200


def test_order_list_page_is_one_query(api, order_ids, django_assert_num_queries):
    _warm(api)
    with django_assert_num_queries(1):
        first = api.get("orders/?limit=50")
    assert first.status_code == 200
    cursor = first.json()["next_cursor"]
    assert cursor
    with django_assert_num_queries(1):
        second = api.get("orders/", QUERY_STRING=f"limit=50&cursor={cursor}")
    assert second.status_code == 200
    assert second.json()["items"]


def test_customer_list_page_is_one_query(api, customer_id, django_assert_num_queries):
    _warm(api)
    with django_assert_num_queries(1):
        response = api.get("customers/?limit=50")
    assert response.status_code == 200


def test_customer_detail_is_one_query(api, customer_id, django_assert_num_queries):
    _warm(api)
    with django_assert_num_queries(1):
        response = api.get(f"customers/{customer_id}/")
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_place_order_queries(api, customer_id, django_assert_num_queries):
    """BEGIN; lock the customer, draw the order id and look up the endpoints subscribed to
    `order.created`; one statement writes the order, its outbox row, its order_view row and the
    customer_view aggregates; COMMIT. The body is built from what was written: no read-back."""
    _warm(api)
    with django_assert_num_queries(4):
        response = api.post("orders/", {"customer_id": customer_id, "item": "Widget", "amount": 5})
    assert response.status_code == 201, response.content


@pytest.mark.django_db(transaction=True)
def test_resend_sms_queries(api, customer_id, django_assert_num_queries):
    """BEGIN, check the order exists, lock its outbox row, reset it, set the order_view status,
    look up the endpoints subscribed to its status change, COMMIT, then read the order back."""
    from backend.commands.models import SmsNotification

    order_id = api.post("orders/", {"customer_id": customer_id, "item": "Widget", "amount": 5})
    order_id = order_id.json()["id"]
    SmsNotification.objects.filter(order_id=order_id).update(status="failed")
    _warm(api)
    with django_assert_num_queries(8):
        response = api.call("POST", f"orders/{order_id}/sms/", raw="")
    assert response.status_code == 202, response.content

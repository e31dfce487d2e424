"""The hand-written SQL of the hot reads returns what the ORM query it replaced returned."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from backend.queries.models import CustomerView, OrderView
from tests.factories import make_customer, make_order
from tests.reads import get_customer, get_order, list_customers, list_orders

pytestmark = pytest.mark.django_db


def test_rows_equal_the_orm_values_with_the_same_types():
    customer_id = make_customer(name="Jane Wanjiru", code="JW-1")
    order_id = make_order(customer_id, amount="1500.10")
    for view, model, pk in (
        (get_order(order_id), OrderView, order_id),
        (get_customer(customer_id), CustomerView, customer_id),
    ):
        orm = model.objects.filter(id=pk).values(*type(view).model_fields).get()
        assert orm == view.model_dump()
        assert {k: type(v) for k, v in orm.items()} == {
            k: type(v) for k, v in view.model_dump().items()
        }
    assert get_order(order_id).time.utcoffset() == timedelta(0)


def test_search_is_a_plain_case_insensitive_substring():
    make_customer(name="50% off_sale", code="PCT-1")
    make_customer(name="500 offXsale", code="PCT-2")
    make_customer(name="Ama\\nda", code="BS-1")
    assert [c.code for c in list_customers(search="0% OFF_").items] == ["PCT-1"]
    assert [c.code for c in list_customers(search="a\\n").items] == ["BS-1"]
    assert [c.code for c in list_customers(search="pct-").items] == ["PCT-1", "PCT-2"]
    assert [c.code for c in list_customers(code="pct-2").items] == ["PCT-2"]
    assert list_customers(code="PCT").items == []


def test_order_filters_combine_with_the_cursor():
    customer_id = make_customer()
    other_id = make_customer()
    ids = []
    for _ in range(5):
        ids.append(make_order(customer_id))
        # `time` is stored to the millisecond: two orders in one would make the time bounds
        # below ambiguous (an order placed takes under a millisecond on PostgreSQL now).
        time.sleep(0.002)
    make_order(other_id)
    first = list_orders(customer_id=customer_id, limit=2)
    assert [o.id for o in first.items] == ids[::-1][:2]
    second = list_orders(customer_id=customer_id, limit=2, cursor=first.next_cursor)
    assert [o.id for o in second.items] == ids[::-1][2:4]
    since = get_order(ids[1]).time
    assert [o.id for o in list_orders(since=since, until=get_order(ids[4]).time).items] == [
        ids[3],
        ids[2],
        ids[1],
    ]


def test_the_code_filter_is_an_index_lookup():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_customer(code="IDX-1")
    with CaptureQueriesContext(connection) as captured:
        assert [c.code for c in list_customers(code="idx-1").items] == ["IDX-1"]
    [query] = captured.captured_queries
    with connection.cursor() as cursor:
        # A handful of rows would always be scanned; forbid that to see if the index applies.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + query["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "customer_view_code_idx" in plan, plan

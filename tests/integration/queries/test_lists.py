import time
from datetime import timedelta

import pytest

from backend.errors import BadRequest, NotFound
from backend.queries.models import OrderView
from tests.factories import make_customer, make_order
from tests.reads import get_customer, get_order, list_customers, list_orders

pytestmark = pytest.mark.django_db


def collect(fetch, **kwargs):
    items, cursor, pages = [], None, 0
    while pages < 100:
        page = fetch(cursor=cursor, **kwargs)
        items.extend(page.items)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    return items, pages


def test_customers_page_by_ascending_id():
    ids = [make_customer() for _ in range(7)]
    items, pages = collect(list_customers, limit=3)
    assert [c.id for c in items] == ids
    assert pages == 3


def test_customer_filters():
    make_customer(name="Jane Wanjiru", code="JW-1")
    make_customer(name="John Otieno", code="JO-1")
    make_customer(name="Amina", code="xjanex")
    assert [c.code for c in list_customers(code="jw-1").items] == ["JW-1"]
    assert {c.code for c in list_customers(search="JANE").items} == {"JW-1", "xjanex"}
    assert list_customers(search="nobody").items == []


def test_orders_newest_first_with_ties_on_time():
    cid = make_customer()
    ids = [make_order(cid) for _ in range(9)]
    # Force equal timestamps: the id breaks the tie, and the cursor must not skip or repeat rows.
    same = OrderView.objects.get(pk=ids[0]).time
    OrderView.objects.filter(pk__in=ids[2:7]).update(time=same + timedelta(hours=1))
    items, _ = collect(list_orders, limit=2)
    expected = sorted(OrderView.objects.values_list("time", "id"), reverse=True)
    assert [(o.time, o.id) for o in items] == expected
    assert len({o.id for o in items}) == 9


def _order_in_its_own_millisecond(customer_id: int) -> int:
    # `time` is stored to the millisecond and an order takes less: without the pause, orders
    # may share a timestamp and the bounds below would take in a neighbour.
    order_id = make_order(customer_id)
    time.sleep(0.002)
    return order_id


def test_order_filters_since_inclusive_until_exclusive():
    a, b = make_customer(), make_customer()
    first, second, third = (_order_in_its_own_millisecond(c) for c in (a, b, a))
    t2 = get_order(second).time
    assert {o.id for o in list_orders(customer_id=a).items} == {first, third}
    assert second in {o.id for o in list_orders(since=t2).items}
    assert second not in {o.id for o in list_orders(until=t2).items}
    assert {o.id for o in list_orders(since=t2, until=t2).items} == set()
    assert {o.id for o in list_orders(customer_id=a, since=t2).items} <= {third}


def test_cursor_is_bound_to_its_filters():
    cid = make_customer()
    for _ in range(3):
        make_order(cid)
    page = list_orders(customer_id=cid, limit=1)
    with pytest.raises(BadRequest):
        list_orders(customer_id=cid + 1, cursor=page.next_cursor)


def test_get_missing_rows():
    with pytest.raises(NotFound):
        get_customer(123456)
    with pytest.raises(NotFound):
        get_order(123456)

"""The bodies PostgreSQL writes (`backend.queries.documents`) are byte for byte the Python ones.

The Python rendering (`backend.api.rendering` over the query dataclasses) is the reference: it is
what Ninja's schemas gave (tests/api/test_rendering.py) and what SQLite still uses. The rows here
carry the values where the two could part: fractions of a second that truncate to `.000`, none
at all, the first year, money with trailing zeros and at its limits, NULLs, every character class
json.dumps escapes (quotes, backslash, control characters, DEL, non-ASCII, beyond the BMP) and ids
beyond 2**53.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from backend.api import rendering
from backend.errors import NotFound
from backend.queries import documents, representations
from backend.queries.customers import list_customers
from backend.queries.models import CustomerView, OrderView
from backend.queries.orders import get_order, list_orders
from tests.cursors import unstamped

pytestmark = pytest.mark.django_db

TIMES = [
    datetime(2026, 11, 27, 8, 30, 0, tzinfo=UTC),  # no fraction
    datetime(2026, 11, 27, 8, 30, 0, 123000, tzinfo=UTC),
    datetime(2026, 11, 27, 8, 30, 0, 123456, tzinfo=UTC),  # truncated, not rounded: .123
    datetime(2026, 11, 27, 8, 30, 0, 999999, tzinfo=UTC),  # .999, not the next second
    datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=UTC),  # a fraction that is .000 in milliseconds
    datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC),
    datetime(2026, 6, 1, 23, 59, 59, 500000, tzinfo=timezone(timedelta(hours=3))),  # EAT in
    datetime(1, 1, 1, 0, 0, 0, 10, tzinfo=UTC),  # the first year, four digits
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
]
TEXTS = [
    "Maize flour 2kg",
    'Jane "W" Wanjiru',
    "back\\slash / and </script>",
    "tab\tnew\nline\rcr\x08bs\x0cff\x01\x1f end",
    "del \x7f here",
    "\u00e9l\u00e8ve \u6f22\u5b57 \u2028\u2029",
    "corn \U0001f33d and \U0010ffff",
    "",
]
AMOUNTS = ["0.01", "0.10", "12.50", "1500.00", "12345678.90", "9999999999.99"]
BIG_IDS = [2**53 + 1, 2**62, 9_223_372_036_854_775_807]


def _orders() -> list[int]:
    ids = []
    for n, (time, text, amount) in enumerate(
        zip(TIMES, itertools.cycle(TEXTS), itertools.cycle(AMOUNTS), strict=False)
    ):
        ids.append(n + 1)
        OrderView.objects.create(
            id=n + 1,
            customer_id=BIG_IDS[n % len(BIG_IDS)],
            customer_code=f"C-{n}",
            customer_name=TEXTS[-1 - n % len(TEXTS)] or "x",
            item=text,
            amount=Decimal(amount),
            time=time,
            sms_status=["pending", "sent", "delivered", "failed"][n % 4],
            sms_error=None if n % 2 else TEXTS[n % len(TEXTS)],
        )
    for n, text in enumerate(TEXTS):  # ids beyond 2**53, all at one instant (the keyset's tie)
        OrderView.objects.create(
            id=BIG_IDS[n % len(BIG_IDS)] - n,
            customer_id=1,
            customer_code="SAME",
            customer_name=text,
            item=text or "-",
            amount=Decimal(AMOUNTS[n % len(AMOUNTS)]),
            time=TIMES[1],
            sms_status="failed",
            sms_error=text,
        )
        ids.append(BIG_IDS[n % len(BIG_IDS)] - n)
    return ids


def _customers() -> list[int]:
    ids = []
    for n, (time, text) in enumerate(zip(TIMES, itertools.cycle(TEXTS), strict=False)):
        customer_id = BIG_IDS[n % len(BIG_IDS)] - n if n > 4 else n + 1
        CustomerView.objects.create(
            id=customer_id,
            name=text or "-",
            code=f"Code_{n}",
            phone_number="+254712345678",
            created_at=time,
            updated_at=TIMES[-1 - n],
            order_count=[0, 1, 2**40][n % 3],
            total_amount=Decimal(["0.00", "0.10", "123456789012345.60"][n % 3]),
            last_order_at=None if n % 2 == 0 else time,
        )
        ids.append(customer_id)
    return ids


def _same_page(sql_body: str, python_body: str) -> None:
    """Equal bytes, but for the cursor's signing second (`tests/cursors.py`)."""
    assert unstamped(sql_body) == unstamped(python_body)


@pytest.mark.parametrize("limit", [1, 2, 5, 50])
def test_order_pages_walked_to_the_end(limit):
    _orders()
    cursor = None
    for _ in range(40):
        body = documents.order_page(cursor=cursor, limit=limit)
        page = list_orders(cursor=cursor, limit=limit)
        _same_page(body, rendering.dumps(rendering.page(page, rendering.order)))
        # The SQL path's cursor is the one the next request brings back.
        cursor = page.next_cursor and body.rpartition('"next_cursor": "')[2][:-2]
        if cursor is None:
            break
    assert cursor is None


@pytest.mark.parametrize(
    "filters",
    [
        {"sms_status": "failed"},
        {"customer_id": 1},
        {"since": TIMES[4], "until": TIMES[2]},
        {"customer_id": 404},
    ],
)
def test_order_pages_with_filters(filters):
    _orders()
    first = list_orders(limit=2, **filters)
    _same_page(
        documents.order_page(limit=2, **filters),
        rendering.dumps(rendering.page(first, rendering.order)),
    )
    if first.next_cursor:
        second = list_orders(limit=2, cursor=first.next_cursor, **filters)
        _same_page(
            documents.order_page(limit=2, cursor=first.next_cursor, **filters),
            rendering.dumps(rendering.page(second, rendering.order)),
        )


@pytest.mark.parametrize(
    "filters", [{}, {"search": "\u6f22"}, {"search": '"W"'}, {"code": "CODE_3"}, {"code": "x"}]
)
def test_customer_pages(filters):
    _customers()
    cursor = None
    for _ in range(20):
        page = list_customers(cursor=cursor, limit=2, **filters)
        body = documents.customer_page(cursor=cursor, limit=2, **filters)
        _same_page(body, rendering.dumps(rendering.page(page, rendering.customer)))
        cursor = page.next_cursor
        if cursor is None:
            break
    assert cursor is None


def test_one_order_is_the_python_body():
    for order_id in _orders():
        assert documents.order(order_id) == representations.text(get_order(order_id))
    with pytest.raises(NotFound, match=r"^Order 404 does not exist\.$"):
        documents.order(404)


def test_one_customer_is_the_python_body():
    from backend.queries.customers import get_customer

    for customer_id in _customers():
        assert documents.customer(customer_id) == representations.text(get_customer(customer_id))
    with pytest.raises(NotFound, match=r"^Customer 404 does not exist\.$"):
        documents.customer(404)


def test_the_ascii_pass_is_json_dumps_ensure_ascii():
    # json.dumps without ensure_ascii escapes what to_json does; the pass must add the rest.
    for text in TEXTS:
        assert documents._ascii(json.dumps(text, ensure_ascii=False)) == json.dumps(text)
    assert documents._ascii('"caf\u00e9 \U0001f33d \x7f"') == '"caf\\u00e9 \\ud83c\\udf3d \\u007f"'


def _next(**filters: object) -> str:
    _orders()
    return json.loads(documents.order_page(**filters))["next_cursor"]


@pytest.mark.parametrize(
    ("render", "index"),
    [
        (lambda: documents.order_page(limit=50), "order_view_time_idx"),
        (lambda: documents.order_page(limit=50, sms_status="failed"), "order_view_status_time_idx"),
        (lambda: documents.order_page(limit=50, customer_id=1), "order_view_customer_time_idx"),
        (lambda: documents.customer_page(limit=50), "customer_view_pkey"),
        (lambda: documents.order_page(limit=1, cursor=_next(limit=1)), "order_view_time_idx"),
    ],
)
def test_a_page_is_an_index_scan_without_a_sort(render, index):
    """The page's rows come in the index's order and stop at the limit (what keeps a page the same
    cost at any depth); a sort would mean reading every matching row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        render()
    query = captured.captured_queries[-1]  # the page (a deeper one's cursor came first)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + query["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan
    assert "Sort" not in plan, plan


def test_the_newest_migration_holds_the_current_rendering():
    """The `document` columns are computed by functions a migration created; when the Python
    rendering changes (a new field, another format), this fails until a new migration replaces
    the functions and columns with what `documents.schema_sql` writes now."""
    from importlib import import_module

    from backend.queries import customers, orders

    migration = import_module("backend.queries.migrations.0003_documents")
    assert [
        documents.json_time_sql(),
        *documents.schema_sql(OrderView, orders.OrderRead),
        *documents.schema_sql(CustomerView, customers.CustomerRead),
    ] == migration.STATEMENTS


def test_documents_follow_every_write_of_their_row():
    """Generated columns: an update by any path (the worker's SQL, the ORM, a rename's fan-out)
    leaves `document` equal to the rendering of the row's new values."""
    from django.db import connection

    from backend.queries.customers import get_customer

    [order_id, *_] = _orders()
    [customer_id, *_] = _customers()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE order_view SET sms_status = 'failed', sms_error = %s, customer_name = %s"
            " WHERE id = %s",
            ["InsufficientBalance", "Renamed \u00e9", order_id],
        )
    CustomerView.objects.filter(id=customer_id).update(
        order_count=7, total_amount=Decimal("70.10"), last_order_at=TIMES[2]
    )
    order_text = documents.order(order_id)
    assert json.loads(order_text)["sms_error"] == "InsufficientBalance"
    assert order_text == representations.text(get_order(order_id))
    page = documents.customer_page(limit=1)
    assert page.startswith('{"items": [' + representations.text(get_customer(customer_id)) + "]")
    assert json.loads(page)["items"][0]["last_order_at"] == "2026-11-27T08:30:00.123Z"


@pytest.mark.django_db(transaction=True)
def test_pages_keep_their_generic_plan():
    """A prepared page whose estimates depend on its parameters (`LIMIT $n`, the cursor's key)
    is planned afresh on every execution: PostgreSQL keeps choosing custom plans. The limit is in
    the text and the key comes from subqueries, so after its five custom plans PostgreSQL uses the
    generic one (pg_prepared_statements counts both)."""
    from django.db import connection

    with connection.cursor() as cursor:  # enough rows for the estimates to depend on the values
        cursor.execute(
            "INSERT INTO order_view (id, customer_id, customer_code, customer_name, item, amount,"
            " time, sms_status)"
            " SELECT n, 1, 'C', 'N', 'I', 1, now() - n * interval '1 minute', 'sent'"
            " FROM generate_series(1, 20000) AS n"
        )
        cursor.execute("ANALYZE order_view")
    first = json.loads(documents.order_page(limit=50))
    for _ in range(8):  # outside a transaction, as the API runs: the libpq path prepares them
        documents.order_page(limit=50)
        documents.order_page(limit=50, cursor=first["next_cursor"])
        documents.customer_page(limit=50)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE name LIKE 'duka_%' AND statement LIKE '%string_agg(page.document%'"
        )
        plans = cursor.fetchall()
    assert len(plans) == 3, plans
    for statement, generic, custom in plans:
        assert generic >= 3 and custom <= 5, (statement, generic, custom)

"""The hand-written JSON of the hot endpoints is byte for byte what Ninja's schemas would give."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from ninja.responses import NinjaJSONEncoder

from backend.api import rendering
from backend.api.schemas.customers import CustomerOut, CustomerPage
from backend.api.schemas.orders import OrderOut, OrderPage
from backend.queries.customers import CustomerRead
from backend.queries.orders import OrderRead
from backend.queries.pagination import Page

TIMES = [
    datetime(2026, 11, 27, 8, 30, 0, 123000, tzinfo=UTC),
    datetime(2026, 11, 27, 8, 30, 0, tzinfo=UTC),  # no fraction: Ninja writes none either
    datetime(2026, 1, 2, 3, 4, 5, 1000, tzinfo=UTC),
    datetime(1, 1, 1, 0, 0, 0, 999999, tzinfo=UTC),
]


def ninja_json(schema, value) -> str:
    return json.dumps(
        schema.model_validate(value, from_attributes=True).model_dump(), cls=NinjaJSONEncoder
    )


def orders() -> list[OrderRead]:
    return [
        OrderRead(
            id=n + 1,
            customer_id=7,
            customer_code="JANE-1",
            customer_name='Jane "W" Wanjiru \u00e9\u6f22',
            item="Maize flour 2kg \u2013 \U0001f33d",
            amount=amount,
            time=time,
            sms_status=status,
            sms_error="UserInBlacklist" if status == "failed" else None,
        )
        for n, (amount, time, status) in enumerate(
            zip(
                [Decimal("1500.00"), Decimal("0.10"), Decimal("9999999999.99"), Decimal("12.50")],
                TIMES,
                ["pending", "sent", "delivered", "failed"],
                strict=True,
            )
        )
    ]


def customers() -> list[CustomerRead]:
    return [
        CustomerRead(
            id=n + 1,
            name="Amina \\ Ali",
            code=f"C-{n}",
            phone_number="+254712345678",
            created_at=TIMES[n],
            updated_at=TIMES[-1 - n],
            order_count=n * 3,
            total_amount=Decimal("0.00") if n == 0 else Decimal("123456.78"),
            last_order_at=None if n == 0 else TIMES[n],
        )
        for n in range(len(TIMES))
    ]


@pytest.mark.parametrize("view", orders())
def test_order(view):
    assert rendering.dumps(rendering.order(view)) == ninja_json(OrderOut, view)


@pytest.mark.parametrize("view", customers())
def test_customer(view):
    assert rendering.dumps(rendering.customer(view)) == ninja_json(CustomerOut, view)


@pytest.mark.parametrize("cursor", ["abc:def", None])
def test_pages(cursor):
    order_page = Page(items=orders(), next_cursor=cursor)
    assert rendering.dumps(rendering.page(order_page, rendering.order)) == ninja_json(
        OrderPage, order_page
    )
    customer_page = Page(items=customers(), next_cursor=cursor)
    assert rendering.dumps(rendering.page(customer_page, rendering.customer)) == ninja_json(
        CustomerPage, customer_page
    )
    empty = Page(items=[], next_cursor=None)
    assert rendering.dumps(rendering.page(empty, rendering.order)) == ninja_json(OrderPage, empty)


def test_content_type_is_ninjas():
    from backend.api.app import api

    assert api.get_content_type() == rendering.CONTENT_TYPE

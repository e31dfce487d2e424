"""Writes through the real command handlers, so projections and outbox rows exist as in production."""

from __future__ import annotations

from decimal import Decimal
from itertools import count

from backend.commands.customers import CreateCustomer, create_customer
from backend.commands.orders import PlaceOrder, place_order

_n = count(1)


def make_customer(
    *, name: str | None = None, code: str | None = None, phone_number: str | None = None
) -> int:
    n = next(_n)
    return create_customer(
        CreateCustomer(
            name=name or f"Customer {n}",
            code=code or f"CUST-{n}",
            phone_number=phone_number or f"+2547{12000000 + n:08d}",
        )
    )


def make_order(customer_id: int, *, item: str = "Widget", amount: str | Decimal = "10.00") -> int:
    return place_order(PlaceOrder(customer_id=customer_id, item=item, amount=Decimal(amount))).id

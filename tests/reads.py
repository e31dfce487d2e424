"""The read side's JSON parsed into its resources, for tests that look at fields."""

from __future__ import annotations

from typing import Any

from backend.queries import customers, orders
from backend.queries.resources import CustomerOut, CustomerPage, OrderOut, OrderPage


def get_order(order_id: int) -> OrderOut:
    return OrderOut.model_validate_json(orders.get_order(order_id))


def list_orders(**filters: Any) -> OrderPage:
    return OrderPage.model_validate_json(orders.list_orders(**filters))


def get_customer(customer_id: int) -> CustomerOut:
    return CustomerOut.model_validate_json(customers.get_customer(customer_id))


def list_customers(**filters: Any) -> CustomerPage:
    return CustomerPage.model_validate_json(customers.list_customers(**filters))

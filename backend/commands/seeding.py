"""Bulk demo data: COPY on PostgreSQL (a million orders in well under a minute), batches elsewhere.

Seeded orders get no outbox row: demo data must never text real phone numbers.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction

from backend import projections
from backend.commands.clock import now_ms
from backend.commands.models import Customer

ITEMS = [
    "Widget",
    "Gadget",
    "Maize flour 2kg",
    "Sugar 1kg",
    "Cooking oil 1L",
    "Rice 5kg",
    "Tea leaves",
    "Soap bar",
    "Matches",
    "Bread",
    "Milk 500ml",
    "Eggs (tray)",
    "Airtime",
    "Solar lamp",
    "Kerosene 1L",
]
FIRST = [
    "Jane",
    "John",
    "Amina",
    "Brian",
    "Wanjiru",
    "Otieno",
    "Achieng",
    "Kamau",
    "Faith",
    "Hassan",
]
LAST = [
    "Mwangi",
    "Odhiambo",
    "Njeri",
    "Kiprop",
    "Wambui",
    "Ochieng",
    "Mutua",
    "Chebet",
    "Ali",
    "Nyambura",
]
BATCH = 10_000


def _customers(
    n: int, tag: str, now: datetime
) -> Iterator[tuple[str, str, str, datetime, datetime]]:
    for i in range(n):
        name = f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}"
        yield name, f"S{tag}-{i}", f"+2547{(10_000_000 + i * 7919) % 100_000_000:08d}", now, now


def _orders(
    customer_ids: list[int], m: int, rng: random.Random, now: datetime
) -> Iterator[tuple[int, str, Decimal, datetime]]:
    # Spread over the past year, oldest first, so ids and times grow together as in real traffic.
    span_ms = 365 * 24 * 3600 * 1000
    start = now - timedelta(milliseconds=span_ms)
    for i in range(m):
        time = start + timedelta(milliseconds=span_ms * i // max(m, 1))
        amount = Decimal(rng.randint(100, 9_999_999)) / 100
        yield rng.choice(customer_ids), rng.choice(ITEMS), amount, time


@transaction.atomic(durable=True)
def seed(*, customers: int, orders: int, rng: random.Random | None = None) -> tuple[int, int]:
    """Insert `customers` new customers and `orders` orders among them, and their read models.

    Only the new customers' projections are written (they are new, so their aggregates are
    exact without looking at anything else): concurrent writes are never blocked by a rebuild."""
    rng = rng or random.Random()  # noqa: S311 - demo data, not security
    if orders and not customers:
        raise ValueError("orders need at least one customer")
    projections.lift_timeouts()  # a million rows take longer than a request's statement bound
    now = now_ms()
    tag = secrets.token_hex(3)
    _copy(
        "customers",
        ("name", "code", "phone_number", "created_at", "updated_at"),
        _customers(customers, tag, now),
    )
    ids = list(Customer.objects.filter(code__startswith=f"S{tag}-").values_list("id", flat=True))
    if orders:
        _copy("orders", ("customer_id", "item", "amount", "time"), _orders(ids, orders, rng, now))
    projections.project_new_customers(code_prefix=f"S{tag}-")
    # Fresh statistics, so the planner uses the keyset indexes right after a bulk load.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers, orders, customer_view, order_view")
    return len(ids), orders


def _copy(table: str, columns: tuple[str, ...], rows: Iterator[tuple[object, ...]]) -> None:
    connection.ensure_connection()
    with (
        connection.connection.cursor() as cursor,
        cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN"  # names are literals above
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)

"""Projection updates: incremental `apply_*` functions called inside command transactions, and
`rebuild_all()` that recomputes every read model from the write tables (must give the same result)."""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import F

from backend.commands.models import Customer, Order, SmsStatus
from backend.queries.models import CustomerView, OrderView

# Orders loaded by `seed` have no outbox row (no SMS is sent for demo data).
UNNOTIFIED_SMS_STATUS = SmsStatus.PENDING.value


def apply_customer_saved(customer: Customer, *, created: bool) -> None:
    """Upsert the customer's view and carry a rename to every one of its orders."""
    fields = {
        "name": customer.name,
        "code": customer.code,
        "phone_number": customer.phone_number,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
    }
    if created:
        CustomerView.objects.create(id=customer.pk, **fields)
        return
    CustomerView.objects.filter(id=customer.pk).update(**fields)
    OrderView.objects.filter(customer_id=customer.pk).exclude(
        customer_code=customer.code, customer_name=customer.name
    ).update(customer_code=customer.code, customer_name=customer.name)


def apply_customer_deleted(customer_id: int) -> None:
    CustomerView.objects.filter(id=customer_id).delete()


def apply_order_placed(order: Order, customer: Customer, *, sms_status: str) -> None:
    """Precondition: the customer row is locked, so `order.time` is the newest of its orders."""
    OrderView.objects.create(
        id=order.pk,
        customer_id=customer.pk,
        customer_code=customer.code,
        customer_name=customer.name,
        item=order.item,
        amount=order.amount,
        time=order.time,
        sms_status=sms_status,
    )
    CustomerView.objects.filter(id=customer.pk).update(
        order_count=F("order_count") + 1,
        total_amount=F("total_amount") + order.amount,
        last_order_at=order.time,
    )


def set_sms_status(order_id: int, status: str) -> None:
    OrderView.objects.filter(id=order_id).update(sms_status=status)


@transaction.atomic
def rebuild_all() -> tuple[int, int]:
    """Recompute both projections from the write tables; returns (customers, orders) written.

    Set-based SQL (valid on PostgreSQL and SQLite) so a million orders take seconds, not a loop.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Blocks concurrent commands for the duration, so the rebuild sees one consistent state.
            cursor.execute("LOCK TABLE customers, orders, sms_notifications IN SHARE MODE")
        cursor.execute("DELETE FROM order_view")
        cursor.execute("DELETE FROM customer_view")
        cursor.execute(
            """
            INSERT INTO customer_view (id, name, code, phone_number, created_at, updated_at,
                                       order_count, total_amount, last_order_at)
            SELECT c.id, c.name, c.code, c.phone_number, c.created_at, c.updated_at,
                   COUNT(o.id), COALESCE(SUM(o.amount), 0), MAX(o.time)
            FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
            GROUP BY c.id, c.name, c.code, c.phone_number, c.created_at, c.updated_at
            """
        )
        customers = cursor.rowcount
        cursor.execute(
            f"""
            INSERT INTO order_view (id, customer_id, customer_code, customer_name, item, amount,
                                    time, sms_status)
            SELECT o.id, o.customer_id, c.code, c.name, o.item, o.amount, o.time,
                   COALESCE(s.status, '{UNNOTIFIED_SMS_STATUS}')
            FROM orders o
            JOIN customers c ON c.id = o.customer_id
            LEFT JOIN sms_notifications s ON s.order_id = o.id
            """  # noqa: S608 - a module constant, not input
        )
        orders = cursor.rowcount
    return customers, orders

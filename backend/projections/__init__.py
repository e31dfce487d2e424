"""Read-model writers: the write side keeps the projection tables (`backend.queries.models`)
exact inside each command's transaction, and can rebuild them from the write tables.

They live on the write side so `backend.queries` only ever reads. They take plain values, not
write models, so this package depends on nothing of `backend.commands` (no cycle).
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection, models, transaction

from backend.queries.models import CustomerView, OrderView

# Orders loaded by `seed` have no outbox row (no SMS is sent for demo data).
UNNOTIFIED_SMS_STATUS = "pending"


def apply_customer_saved(
    *,
    customer_id: int,
    name: str,
    code: str,
    phone_number: str,
    created_at: datetime,
    updated_at: datetime,
    created: bool,
) -> None:
    """Upsert the customer's view and carry a rename to every one of its orders."""
    fields = {
        "name": name,
        "code": code,
        "phone_number": phone_number,
        "created_at": created_at,
        "updated_at": updated_at,
    }
    if created:
        CustomerView.objects.create(id=customer_id, **fields)
        return
    CustomerView.objects.filter(id=customer_id).update(**fields)
    OrderView.objects.filter(customer_id=customer_id).exclude(
        customer_code=code, customer_name=name
    ).update(customer_code=code, customer_name=name)


def apply_customer_deleted(customer_id: int) -> None:
    CustomerView.objects.filter(id=customer_id).delete()


# A placed order's part of the customer's view, run by the order write in its statement with
# the order's `amount`, `time` and `customer_id` (the order's own view row is the resource).
# `last_order_at` is the greatest order time, as `rebuild_all` computes it, even when the clock
# stepped back between two orders. Precondition: the customer row is locked.
ORDER_PLACED = f"""
    UPDATE "{CustomerView._meta.db_table}"
    SET order_count = order_count + 1, total_amount = total_amount + %(amount)s,
        last_order_at = GREATEST(COALESCE(last_order_at, %(time)s), %(time)s)
    WHERE id = %(customer_id)s
"""  # noqa: S608 - model metadata, not input


def set_sms_status(order_id: int, status: str, error: str | None) -> None:
    OrderView.objects.filter(id=order_id).update(sms_status=status, sms_error=error or None)


def _insert_select(view: type[models.Model], source: str, computed: dict[str, str]) -> str:
    """`INSERT INTO <view> (<every column>) SELECT ...`: each column from `computed`, else the
    column of the same name of `source` (the write table's alias), so a field added to both
    tables needs nothing here."""
    names = [field.column for field in view._meta.concrete_fields]
    values = [computed.get(name, f'{source}."{name}"') for name in names]
    targets = ", ".join(f'"{name}"' for name in names)
    return f'INSERT INTO "{view._meta.db_table}" ({targets}) SELECT {", ".join(values)}'


_CUSTOMERS_SQL = (
    _insert_select(
        CustomerView,
        "c",
        {
            "order_count": "COUNT(o.id)",
            "total_amount": "COALESCE(SUM(o.amount), 0)",
            "last_order_at": "MAX(o.time)",
        },
    )
    + " FROM customers c LEFT JOIN orders o ON o.customer_id = c.id {where} GROUP BY c.id"
)
# In id order, as orders arrive: the heap then holds a page's neighbours together, as it does for
# real traffic, instead of in the hash join's order (a page of 50 touched 50 heap pages).
_ORDERS_SQL = (
    _insert_select(
        OrderView,
        "o",
        {
            "customer_code": "c.code",
            "customer_name": "c.name",
            "sms_status": f"COALESCE(s.status, '{UNNOTIFIED_SMS_STATUS}')",
            "sms_error": "NULLIF(s.error_reason, '')",
        },
    )
    + " FROM orders o JOIN customers c ON c.id = o.customer_id"
    " LEFT JOIN sms_notifications s ON s.order_id = o.id {where} ORDER BY o.id"
)


def lift_timeouts() -> None:
    """Bulk work inside the current transaction may run longer than a request's statements."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0")


@transaction.atomic
def rebuild_all() -> tuple[int, int]:
    """Recompute both projections from the write tables; returns (customers, orders) written.

    Set-based SQL so a million orders take seconds, not a loop.
    This is the operator's repair tool (`rebuild_read_models`): it holds SHARE locks so it sees
    one consistent state, which pauses writes while it runs. `seed` does not use it.
    """
    lift_timeouts()
    with connection.cursor() as cursor:
        cursor.execute("LOCK TABLE customers, orders, sms_notifications IN SHARE MODE")
        cursor.execute("DELETE FROM order_view")
        cursor.execute("DELETE FROM customer_view")
        cursor.execute(_CUSTOMERS_SQL.format(where=""))
        customers = cursor.rowcount
        cursor.execute(_ORDERS_SQL.format(where=""))
        orders = cursor.rowcount
    return customers, orders


def project_new_customers(*, code_prefix: str) -> tuple[int, int]:
    """Write the views of the customers whose code starts with `code_prefix`, all new in this
    transaction, with all their orders (what `seed` loads).

    Precondition: inside the transaction that inserted them, so no other transaction can have
    added orders for them and the aggregates computed here are exact, without locking anything
    that concurrent writes need."""
    where = "WHERE c.code LIKE %s"
    with connection.cursor() as cursor:
        cursor.execute(_CUSTOMERS_SQL.format(where=where), [code_prefix + "%"])
        customers = cursor.rowcount
        cursor.execute(_ORDERS_SQL.format(where=where), [code_prefix + "%"])
        orders = cursor.rowcount
    return customers, orders

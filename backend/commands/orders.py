"""Order command handlers: the order, both projections, the SMS outbox row and any webhook
event rows, all or nothing.

An order is the hot write, so its rows go to PostgreSQL in two statements, not one per row:
the first locks the customer and draws the order's id (the SMS text names it), the second
inserts every row built here. Each row is a model instance, so Django's field defaults
apply, and each INSERT names every column of its model: a field added to a
model and to the resource needs no change here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import connection, models
from django.utils import timezone

from backend import projections
from backend.commands import outbox
from backend.commands.clock import now_ms
from backend.commands.idempotency import IdempotencyClaim, complete_claim
from backend.commands.models import Order, SmsNotification
from backend.commands.outbox import webhook_deliveries
from backend.commands.transactions import handler
from backend.errors import InvalidField, NotFound
from backend.observability.context import current_request_id
from backend.observability.signals import order_placed
from backend.queries.models import OrderView
from backend.queries.resources import OrderOut

ORDER_CREATED = "order.created"

# The customer locked, the order's id drawn and the endpoints told of new orders, in one trip.
_LOCK_CUSTOMER = f"""
    SELECT code, name, phone_number, nextval(pg_get_serial_sequence('orders', 'id')),
           {webhook_deliveries.SUBSCRIBED_SQL}
    FROM customers WHERE id = %s FOR UPDATE
"""  # noqa: S608 - model metadata, not input
# The resource's fields the order row holds (the others come from its customer and its SMS).
_FROM_ORDER = [
    name
    for name in OrderOut.model_fields
    if name in {field.attname for field in Order._meta.concrete_fields}
]


@dataclass(frozen=True, kw_only=True)
class PlaceOrder:
    customer_id: int
    item: str
    amount: Decimal
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class ResendOrderSms:
    order_id: int


@handler
def place_order(cmd: PlaceOrder, *, idempotency: IdempotencyClaim | None = None) -> OrderOut:
    """Returns the order as written: the 201 body is built from it, not read back.

    Precondition: the fields are valid as the API validates them (item trimmed, `amount` > 0
    with at most 2 places; the database re-checks the amount). The dispatcher publishes the
    SMS once this commits."""
    with connection.cursor() as cursor:
        # Locking the customer serialises its orders, which keeps its aggregates exact.
        cursor.execute(_LOCK_CUSTOMER, [ORDER_CREATED, cmd.customer_id])
        found = cursor.fetchone()
        if found is None:
            raise InvalidField("customer_id", f"Customer {cmd.customer_id} does not exist.")
        code, name, phone, order_id, endpoint_ids = found
        order = Order(id=order_id, time=now_ms(), **vars(cmd))
        placed = OrderOut(
            **{field: getattr(order, field) for field in _FROM_ORDER},
            customer_code=code,
            customer_name=name,
            sms_status=SmsNotification._meta.get_field("status").default,
            sms_error=None,
        )
        now = timezone.now()
        sms = SmsNotification(
            order_id=order_id,
            recipient=phone,
            text=outbox.order_sms_text(
                customer_name=name, order_id=order_id, item=order.item, amount=order.amount
            ),
            request_id=current_request_id() or "",
            created_at=now,
            updated_at=now,
        )
        params: dict[str, Any] = {
            "amount": order.amount,
            "time": order.time,
            "customer_id": cmd.customer_id,
        }
        ctes = [
            _insert("o", order, params),
            _insert("s", sms, params),
            _insert("v", OrderView(**placed.model_dump()), params),
        ]
        cursor.execute(f"WITH {', '.join(ctes)} {projections.ORDER_PLACED}", params)
    webhook_deliveries.record_event(
        ORDER_CREATED, subject=f"order:{order_id}", data=placed.data, endpoint_ids=endpoint_ids
    )
    if idempotency is not None:
        complete_claim(idempotency, resource_id=order_id)
    order_placed.send(sender=Order, order_id=order_id)
    return placed


def _insert(name: str, row: models.Model, params: dict[str, Any]) -> str:
    """`name AS (INSERT INTO <row's table> (<every column>) VALUES (...))`, the row's values
    added to `params` (an unset primary key is left to the database)."""
    sql, attnames = _insert_sql(name, type(row), row.pk is not None)
    for attname in attnames:
        params[f"{name}_{attname}"] = getattr(row, attname)
    return sql


@cache
def _insert_sql(name: str, model: type[models.Model], with_pk: bool) -> tuple[str, tuple[str, ...]]:
    fields = [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    values = ", ".join(f"%({name}_{f.attname})s" for f in fields)
    table = model._meta.db_table
    sql = f'{name} AS (INSERT INTO "{table}" ({columns}) VALUES ({values}))'  # noqa: S608 - metadata
    return sql, tuple(f.attname for f in fields)


@handler
def resend_order_sms(cmd: ResendOrderSms, *, idempotency: IdempotencyClaim | None = None) -> int:
    """Queue one new SMS for an order whose notification failed; returns the order id.

    The dispatcher publishes it once this commits (the trigger wakes it, as for a new order)."""
    if not Order.objects.filter(pk=cmd.order_id).exists():
        raise NotFound(f"Order {cmd.order_id} does not exist.")
    outbox.resend(cmd.order_id)
    if idempotency is not None:
        complete_claim(idempotency, resource_id=cmd.order_id, status=202)
    return cmd.order_id

"""Order command handler: the order, both projections, the SMS outbox row and any webhook
event rows, all or nothing.

On PostgreSQL an order costs two round trips and no transaction of its own: one read (the
customer, the order's id from its sequence, the endpoints subscribed to `order.created`), then
one statement of data-modifying CTEs that locks the customer and writes every row (a single
statement is atomic). The SMS text needs the order id (it is fitted to one segment), which is
why the id is drawn first. `_place_order_orm` is the portable version (SQLite, the quick
start) and the reference: tests compare the rows the two write.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.utils import timezone

from backend import database, projections
from backend.commands import outbox, webhooks
from backend.commands.clock import now_ms
from backend.commands.idempotency import ClaimLost, IdempotencyClaim, complete_claim
from backend.commands.models import (
    Customer,
    IdempotencyRecord,
    Order,
    SmsNotification,
    SmsStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from backend.commands.sqlwrite import insert_select
from backend.errors import InvalidField, NotFound
from backend.notifications import events
from backend.observability.context import current_request_id
from backend.observability.signals import order_placed
from backend.queries.models import CustomerView, OrderView
from backend.queries.orders import OrderRead

ORDER_CREATED = "order.created"
# A rename or new phone number between the two round trips makes the write find no customer
# row as read; it is read again, this many times, before taking the locking path.
_RACE_RETRIES = 3
CENTS = Decimal("0.01")


@dataclass(frozen=True, kw_only=True)
class PlaceOrder:
    customer_id: int
    item: str
    amount: Decimal


# The order as written is its read model row: the 201 body is built from it, not read back.
PlacedOrder = OrderRead


@dataclass(frozen=True, kw_only=True)
class ResendOrderSms:
    order_id: int


def place_order(cmd: PlaceOrder, *, idempotency: IdempotencyClaim | None = None) -> PlacedOrder:
    """Precondition: `amount` > 0 with at most 2 places (the API validates; the DB re-checks);
    not inside a transaction (the write commits on its own).

    Writes rows and returns: the dispatcher publishes the SMS once this commits."""
    placed = None
    if connection.vendor == "postgresql":
        for _ in range(_RACE_RETRIES):
            if (placed := _place_order_sql(cmd, idempotency)) is not None:
                break
    if placed is None:
        placed = _place_order_orm(cmd, idempotency=idempotency)
    order_placed.send(sender=PlacedOrder, order_id=placed.id)
    return placed


# --- PostgreSQL: two round trips ---------------------------------------------------------------

_READ_SQL = """
    SELECT nextval(pg_get_serial_sequence('orders', 'id')), c.code, c.name, c.phone_number,
           ARRAY(SELECT e.id FROM webhook_endpoints e
                 WHERE e.enabled AND e.deleted_at IS NULL AND e.events ? %s ORDER BY e.id)
    FROM customers c WHERE c.id = %s
"""


@cache
def _write_sql(*, claimed: bool, subscribed: bool) -> tuple[str, dict[str, Any]]:
    """The write statement (and its constant parameters) for one order. Every row is written
    FROM the CTE before it, so when the customer is not as read (renamed, deleted) or the
    idempotency claim was taken over, nothing at all is written."""
    sms = insert_select(
        SmsNotification,
        prefix="sms",
        exprs={"order_id": "o.id"},
        params=("recipient", "text", "request_id", "created_at", "updated_at"),
    )
    view = insert_select(
        OrderView,
        prefix="view",
        exprs={
            "id": "o.id",
            "customer_id": "c.id",
            "customer_code": "c.code",
            "customer_name": "c.name",
            "item": "o.item",
            "amount": "o.amount",
            "time": "o.time",
            "sms_status": "s.status",
        },
    )
    parts = [
        """c AS (
            SELECT id, code, name FROM customers
            WHERE id = %(customer_id)s AND code = %(code)s AND name = %(name)s
              AND phone_number = %(phone)s
            FOR UPDATE)"""
    ]
    order_from = "c"
    if claimed:
        parts.append(
            f"""k AS (
            UPDATE {IdempotencyRecord._meta.db_table}
            SET resource_id = %(order_id)s, response_status = 201
            WHERE id = %(claim_id)s AND claim_token = %(claim_token)s AND resource_id IS NULL
              AND EXISTS (SELECT FROM c)
            RETURNING id)"""  # noqa: S608 - model metadata, not input
        )
        order_from = "c, k"
    parts += [
        f"""o AS (
            INSERT INTO {Order._meta.db_table} (id, customer_id, item, amount, time)
            SELECT %(order_id)s, c.id, %(item)s, %(amount)s, %(time)s FROM {order_from}
            RETURNING id, item, amount, time)""",  # noqa: S608 - model metadata, not input
        f"s AS ({sms.sql} FROM o RETURNING status)",
        f"v AS ({view.sql} FROM o, c, s)",
        f"""u AS (
            UPDATE {CustomerView._meta.db_table}
            SET order_count = order_count + 1, total_amount = total_amount + %(amount)s,
                last_order_at = GREATEST(COALESCE(last_order_at, %(time)s), %(time)s)
            WHERE id = %(customer_id)s AND EXISTS (SELECT FROM o))""",  # noqa: S608 - metadata
    ]
    constants = {**sms.defaults, **view.defaults}
    if subscribed:
        delivery = insert_select(
            WebhookDelivery,
            prefix="hook",
            exprs={"endpoint_id": "e.id"},
            params=(
                "event_id",
                "event_type",
                "subject",
                "body",
                "request_id",
                "created_at",
                "updated_at",
            ),
        )
        parts.append(
            f"""w AS ({delivery.sql}
            FROM o, {WebhookEndpoint._meta.db_table} e
            WHERE e.id = ANY(%(endpoint_ids)s) AND e.enabled AND e.deleted_at IS NULL)"""
        )
        constants.update(delivery.defaults)
    result = "SELECT EXISTS (SELECT FROM c), (SELECT id FROM o), (SELECT status FROM s)"
    sql = "WITH " + ",\n".join(parts) + "\n" + result
    return sql, constants


def _place_order_sql(cmd: PlaceOrder, claim: IdempotencyClaim | None) -> PlacedOrder | None:
    """None when the customer changed between the read and the write (read it again)."""
    # Two statements; in autocommit, as in a request, each one libpq call (backend.database).
    db = connections[DEFAULT_DB_ALIAS]
    [found] = database.fetchall(db, _READ_SQL, [ORDER_CREATED, cmd.customer_id]) or [None]
    if found is None:
        raise _no_customer(cmd.customer_id)
    order_id, code, name, phone, endpoint_ids = found
    item = cmd.item.strip()
    amount = cmd.amount.quantize(CENTS)  # as numeric(12, 2) stores it: the body shows that
    time = now_ms()
    now = timezone.now()
    request_id = current_request_id() or ""
    placed = PlacedOrder(
        id=order_id,
        customer_id=cmd.customer_id,
        customer_code=code,
        customer_name=name,
        item=item,
        amount=amount,
        time=time,
        sms_status=SmsStatus.PENDING.value,
        sms_error=None,
    )
    sql, constants = _write_sql(claimed=claim is not None, subscribed=bool(endpoint_ids))
    params: dict[str, Any] = {
        **constants,
        "customer_id": cmd.customer_id,
        "code": code,
        "name": name,
        "phone": phone,
        "order_id": order_id,
        "item": item,
        "amount": amount,
        "time": time,
        "sms_recipient": phone,
        "sms_text": outbox.order_sms_text(
            customer_name=name, order_id=order_id, item=item, amount=amount
        ),
        "sms_request_id": request_id,
        "sms_created_at": now,
        "sms_updated_at": now,
    }
    if claim is not None:
        params["claim_id"] = claim.record_id
        params["claim_token"] = claim.token
    if endpoint_ids:
        params.update(
            endpoint_ids=list(endpoint_ids),
            hook_event_id=events.new_event_id(),
            hook_event_type=ORDER_CREATED,
            hook_subject=f"order:{order_id}",
            hook_body=events.event_body(
                event_type=ORDER_CREATED, occurred_at=now, data=_event_data(placed)
            ),
            hook_request_id=request_id,
            hook_created_at=now,
            hook_updated_at=now,
        )
    [(customer_as_read, written, _)] = database.fetchall(db, sql, params)
    if not customer_as_read:
        return None
    if written is None:
        raise ClaimLost(
            "A newer request with this Idempotency-Key took over while this one was still "
            "running; its result is the one kept. Retry to get it."
        )
    return placed


def _event_data(order: PlacedOrder) -> dict[str, Any]:
    return events.order_data(**{f.name: getattr(order, f.name) for f in fields(order)})


def _no_customer(customer_id: int) -> InvalidField:
    return InvalidField("customer_id", f"Customer {customer_id} does not exist.")


# --- Portable: the ORM, in a transaction (SQLite; the reference the SQL is tested against) ------


@transaction.atomic(durable=True)
def _place_order_orm(cmd: PlaceOrder, *, idempotency: IdempotencyClaim | None) -> PlacedOrder:
    try:
        # Locking the customer serialises its orders, which keeps its aggregates exact.
        customer = Customer.objects.select_for_update().get(pk=cmd.customer_id)
    except Customer.DoesNotExist:
        raise _no_customer(cmd.customer_id) from None
    order = Order.objects.create(
        customer=customer, item=cmd.item.strip(), amount=cmd.amount.quantize(CENTS), time=now_ms()
    )
    sms_status = outbox.add_sms(
        order_id=order.pk,
        recipient=customer.phone_number,
        text=outbox.order_sms_text(
            customer_name=customer.name, order_id=order.pk, item=order.item, amount=order.amount
        ),
    )
    placed = PlacedOrder(
        id=order.pk,
        customer_id=customer.pk,
        customer_code=customer.code,
        customer_name=customer.name,
        item=order.item,
        amount=order.amount,
        time=order.time,
        sms_status=sms_status,
        sms_error=None,
    )
    projections.apply_order_placed(placed)
    webhooks.record_event(
        ORDER_CREATED, subject=f"order:{order.pk}", data=lambda: _event_data(placed)
    )
    if idempotency is not None:
        complete_claim(idempotency, resource_id=order.pk)
    return placed


@transaction.atomic(durable=True)
def resend_order_sms(cmd: ResendOrderSms, *, idempotency: IdempotencyClaim | None = None) -> int:
    """Queue one new SMS for an order whose notification failed; returns the order id.

    The dispatcher publishes it once this commits (the trigger wakes it, as for a new order)."""
    if not Order.objects.filter(pk=cmd.order_id).exists():
        raise NotFound(f"Order {cmd.order_id} does not exist.")
    outbox.resend(cmd.order_id)
    if idempotency is not None:
        complete_claim(idempotency, resource_id=cmd.order_id, status=202)
    return cmd.order_id

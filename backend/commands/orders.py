"""Order command handler: the order, both projections and the SMS outbox row in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from backend import projections
from backend.commands import outbox, webhooks
from backend.commands.clock import now_ms
from backend.commands.idempotency import IdempotencyClaim, complete_claim
from backend.commands.models import Customer, Order
from backend.errors import InvalidField, NotFound


@dataclass(frozen=True, kw_only=True)
class PlaceOrder:
    customer_id: int
    item: str
    amount: Decimal


@dataclass(frozen=True, kw_only=True)
class ResendOrderSms:
    order_id: int


@transaction.atomic(durable=True)
def place_order(cmd: PlaceOrder, *, idempotency: IdempotencyClaim | None = None) -> int:
    """Precondition: `amount` > 0 with at most 2 places (the API validates; the DB re-checks).

    Writes rows and returns: the dispatcher publishes the SMS once this commits."""
    try:
        # Locking the customer serialises its orders, which keeps its aggregates exact.
        customer = Customer.objects.select_for_update().get(pk=cmd.customer_id)
    except Customer.DoesNotExist:
        raise InvalidField("customer_id", f"Customer {cmd.customer_id} does not exist.") from None
    order = Order.objects.create(
        customer=customer, item=cmd.item.strip(), amount=cmd.amount, time=now_ms()
    )
    sms_status = outbox.add_sms(
        order_id=order.pk,
        recipient=customer.phone_number,
        customer_name=customer.name,
        item=order.item,
        amount_text=f"{order.amount:.2f}",
    )
    projections.apply_order_placed(
        order_id=order.pk,
        customer_id=customer.pk,
        customer_code=customer.code,
        customer_name=customer.name,
        item=order.item,
        amount=order.amount,
        time=order.time,
        sms_status=sms_status,
    )
    webhooks.record_order_event("order.created", order.pk)
    if idempotency is not None:
        complete_claim(idempotency, resource_id=order.pk)
    return order.pk


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

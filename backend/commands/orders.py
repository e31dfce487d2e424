"""Order command handler: the order, both projections and the SMS outbox row in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from backend.commands import sms
from backend.commands.clock import now_ms
from backend.commands.idempotency import IdempotencyClaim, complete_claim
from backend.commands.models import Customer, Order
from backend.errors import InvalidField
from backend.queries import projections


@dataclass(frozen=True, kw_only=True)
class PlaceOrder:
    customer_id: int
    item: str
    amount: Decimal


@transaction.atomic(durable=True)
def place_order(cmd: PlaceOrder, *, idempotency: IdempotencyClaim | None = None) -> int:
    """Precondition: `amount` > 0 with at most 2 places (the API validates; the DB re-checks)."""
    try:
        # Locking the customer serialises its orders, which keeps its aggregates exact and makes
        # the order time monotonic per customer.
        customer = Customer.objects.select_for_update().get(pk=cmd.customer_id)
    except Customer.DoesNotExist:
        raise InvalidField("customer_id", f"Customer {cmd.customer_id} does not exist.") from None
    order = Order.objects.create(
        customer=customer, item=cmd.item.strip(), amount=cmd.amount, time=now_ms()
    )
    notification = sms.add_to_outbox(order=order, customer=customer)
    projections.apply_order_placed(order, customer, sms_status=notification.status)
    if idempotency is not None:
        complete_claim(idempotency, resource_id=order.pk)
    sms.enqueue_after_commit(notification.pk)
    return order.pk

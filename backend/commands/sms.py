"""Outbox side of the SMS notification: the row written in the order's transaction."""

from __future__ import annotations

from django.utils import timezone

from backend.commands.models import Customer, Order, SmsNotification


def compose_message(*, customer_name: str, order_id: int, item: str, amount_text: str) -> str:
    return f"Hi {customer_name}, we received your order #{order_id}: {item}, KES {amount_text}. Thank you!"[:160]


def add_to_outbox(*, order: Order, customer: Customer) -> SmsNotification:
    """Precondition: runs inside the transaction that created `order`."""
    now = timezone.now()
    return SmsNotification.objects.create(
        order=order,
        recipient=customer.phone_number,
        text=compose_message(
            customer_name=customer.name, order_id=order.pk, item=order.item, amount_text=f"{order.amount:.2f}"
        ),
        created_at=now,
        updated_at=now,
    )


def enqueue_after_commit(notification_id: int) -> None:
    """Hand the notification to the worker once the order is committed (replaced by the SMS work)."""

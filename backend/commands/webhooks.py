"""Webhook events, as the order and customer commands record them inside their transaction.

This module is their import path; the events are the outbox's webhook channel
(`backend.commands.outbox.webhook_deliveries`), and endpoints are managed by
`backend.commands.webhook_endpoints`.
"""

from backend.commands.outbox.webhook_deliveries import (
    record_customer_event,
    record_event,
    record_order_event,
)

__all__ = ["record_customer_event", "record_event", "record_order_event"]

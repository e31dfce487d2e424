"""Hooks the write side fires for instrumentation (observability imports none of the write side).

`order_placed` is sent once per order a command placed, inside or after its write: the order
write is one SQL statement on PostgreSQL, which fires no model signal (`post_save`)."""

from __future__ import annotations

from django.dispatch import Signal

order_placed = Signal()  # kwargs: order_id

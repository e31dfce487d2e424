"""The `backend.observability` app: starts Sentry and the order counter in every process."""

from __future__ import annotations

from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "backend.observability"
    label = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        from backend.observability.metrics import count_created_order
        from backend.observability.sentry import init_sentry
        from backend.observability.signals import order_placed

        init_sentry()
        # Fired by the order command (observability sits below the write side, imports none of it).
        order_placed.connect(count_created_order, dispatch_uid="duka-orders-created")

"""The `backend.observability` app: starts Sentry and the order counter in every process."""

from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_save


class ObservabilityConfig(AppConfig):
    name = "backend.observability"
    label = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        from backend.commands.models import Order
        from backend.observability.metrics import count_created_order
        from backend.observability.sentry import init_sentry

        init_sentry()
        post_save.connect(count_created_order, sender=Order, dispatch_uid="duka-orders-created")

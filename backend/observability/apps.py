"""The `backend.observability` app: starts Sentry and the order counter in every process."""

from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_save


class ObservabilityConfig(AppConfig):
    name = "backend.observability"
    label = "observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        from backend.observability.metrics import count_created_order
        from backend.observability.sentry import init_sentry

        init_sentry()
        # A lazy sender ("app_label.Model"): observability sits below the write side and
        # imports none of it.
        post_save.connect(
            count_created_order, sender="commands.Order", dispatch_uid="duka-orders-created"
        )

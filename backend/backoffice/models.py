"""The back-office's screens as proxy models: no table of their own, one permission set each
(the roles in `backend.backoffice.roles` grant them), and one "Duka" section in the admin.

Orders are shown from their read model (what the API shows); the other screens sit on the write
models, which the admin reads but only changes through the command handlers.
"""

from __future__ import annotations

from django.contrib.admin.models import LogEntry
from oauth2_provider.models import Application

from backend.commands import models as write
from backend.queries.models import OrderView


class Order(OrderView):
    class Meta:
        proxy = True
        verbose_name = "order"
        ordering = ("-time", "-id")


class Customer(write.Customer):
    class Meta:
        proxy = True
        verbose_name = "customer"
        ordering = ("code",)


class WebhookEndpoint(write.WebhookEndpoint):
    class Meta:
        proxy = True
        verbose_name = "webhook endpoint"
        ordering = ("-id",)


class ApiClient(Application):
    """A client of the built-in issuer (django-oauth-toolkit's Application)."""

    class Meta:
        proxy = True
        verbose_name = "API client"
        ordering = ("name", "id")

    def __str__(self) -> str:
        return f"{self.name or 'client'} ({self.client_id})"


class AuditEntry(LogEntry):
    """The admin's own change log (who, what, when), listed as the back-office's audit log."""

    class Meta:
        proxy = True
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """The back-office at /admin/ (docs/backoffice.md): Django's admin over the command handlers."""

    name = "backend.backoffice"
    label = "backoffice"
    verbose_name = "Duka"
    default_auto_field = "django.db.models.BigAutoField"

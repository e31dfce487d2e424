from django.apps import AppConfig


class BackofficeConfig(AppConfig):
    """The back-office at /admin/ (docs/backoffice.md): Django's admin over the command handlers."""

    name = "backend.backoffice"
    label = "backoffice"
    verbose_name = "Duka"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from backend.backoffice.roles import sync_role_groups

        # After Django's own receiver made this app's permissions (it is connected earlier).
        post_migrate.connect(sync_role_groups, sender=self, dispatch_uid="backoffice-roles")
        # Sessions end ADMIN_SESSION_SECONDS after any sign-in (a user_logged_in receiver).
        from backend.backoffice.signin import passwords  # noqa: F401

from django.apps import AppConfig


class IssuerConfig(AppConfig):
    """The built-in OIDC issuer (django-oauth-toolkit), used when OIDC_ISSUER is unset."""

    name = "backend.issuer"
    label = "issuer"
    default_auto_field = "django.db.models.BigAutoField"

from django.apps import AppConfig


class IssuerConfig(AppConfig):
    """The built-in OIDC issuer (django-oauth-toolkit), used when OIDC_ISSUER is unset."""

    name = "backend.issuer"
    label = "issuer"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The token validator verifies our own tokens with our keys, without HTTP to ourselves.
        from backend.integrations import oidc
        from backend.issuer.keys import builtin_jwks

        oidc.use_builtin_jwks(builtin_jwks)

from __future__ import annotations

from django.db import models
from oauth2_provider.settings import APPLICATION_MODEL


class ClientScopes(models.Model):
    """The scopes a built-in-issuer client may obtain (DOT's Application has no such field)."""

    application = models.OneToOneField(
        APPLICATION_MODEL, on_delete=models.CASCADE, related_name="duka_scopes"
    )
    scopes = models.TextField(help_text="Space-separated scope names")

    def __str__(self) -> str:
        return self.scopes

    def as_list(self) -> list[str]:
        return self.scopes.split()

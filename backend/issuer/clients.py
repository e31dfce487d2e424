"""Registering clients of the built-in issuer."""

from __future__ import annotations

from django.db import transaction
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_application_model

from backend.issuer.conf import API_SCOPES
from backend.issuer.models import ClientScopes


class UnknownScope(ValueError):
    pass


def parse_scopes(value: str | list[str]) -> list[str]:
    """Space- or comma-separated scope names, validated and de-duplicated (order kept)."""
    parts = [value] if isinstance(value, str) else list(value)
    items = [scope for part in parts for scope in part.replace(",", " ").split()]
    unknown = [scope for scope in items if scope not in API_SCOPES]
    if unknown:
        raise UnknownScope(
            f"unknown scope(s): {', '.join(unknown)} (known: {', '.join(API_SCOPES)})"
        )
    return list(dict.fromkeys(items))


@transaction.atomic
def create_client(*, name: str, scopes: list[str] | str) -> tuple[str, str]:
    """A confidential client-credentials client; returns (client_id, plaintext secret).

    The secret is stored hashed, so this is the only moment it can be shown.
    """
    allowed = parse_scopes(scopes)
    if not allowed:
        raise UnknownScope(f"name at least one scope (known: {', '.join(API_SCOPES)})")
    application_model = get_application_model()
    secret = generate_client_secret()
    application = application_model.objects.create(
        name=name,
        client_type=application_model.CLIENT_CONFIDENTIAL,
        authorization_grant_type=application_model.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        hash_client_secret=True,
    )
    ClientScopes.objects.create(application=application, scopes=" ".join(allowed))
    return application.client_id, secret

"""Registering clients of the built-in issuer, rotating their secrets and revoking them (the
`createclient` command and the back-office both go through here)."""

from __future__ import annotations

from django.db import transaction
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import AbstractApplication, get_application_model

from backend.issuer.conf import API_SCOPES
from backend.issuer.models import ClientScopes


class UnknownScope(ValueError):
    pass


class UnknownClient(LookupError):
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


def _locked(client_id: str) -> AbstractApplication:
    application = (
        get_application_model().objects.select_for_update().filter(client_id=client_id).first()
    )
    if application is None:
        raise UnknownClient(f"no client {client_id!r}")
    return application


@transaction.atomic
def rotate_secret(client_id: str) -> str:
    """Give the client a new secret and return it in plain text (stored hashed, like at
    creation, so this is the only moment it can be shown). The old secret stops working at
    once; access tokens already issued stay valid until they expire."""
    application = _locked(client_id)
    secret = generate_client_secret()
    application.client_secret = secret
    application.hash_client_secret = True
    application.save(update_fields=["client_secret", "hash_client_secret", "updated"])
    return secret


@transaction.atomic
def revoke_client(client_id: str) -> None:
    """Delete the client with its registered scopes and DOT's token rows: it can obtain no
    more tokens. Access tokens already issued are signed JWTs and stay valid until they expire
    (at most ACCESS_TOKEN_LIFETIME_SECONDS)."""
    _locked(client_id).delete()

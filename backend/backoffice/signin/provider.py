"""The Authlib client of OIDC_ISSUER for the back-office sign-in.

Its endpoints and keys' address come from the discovery document that token validation already
fetches and caches (`backend.integrations.oidc.discovery`), handed to Authlib as server metadata,
so there is one copy of it per process. Authlib does the protocol: state, nonce, PKCE (S256), the
code exchange and the ID token's validation (signature, `iss`, `aud`, `exp`, `nonce`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authlib.integrations.django_client import DjangoOAuth2App, OAuth
from django.conf import settings

from backend.integrations import oidc
from backend.integrations.oidc_http import FETCH_TIMEOUT_SECONDS

_NAME = "issuer"


def metadata() -> dict[str, Any]:
    """Server metadata for Authlib: the cached discovery document, with the ID-token algorithms
    narrowed to OIDC_ALGORITHMS (the same ones access tokens may use). Raises when the
    document cannot be fetched."""
    document: Mapping[str, Any] = oidc.discovery().document()
    offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    accepted = [alg for alg in offered if alg in settings.OIDC_ALGORITHMS]
    return {**document, "id_token_signing_alg_values_supported": accepted}


def client() -> DjangoOAuth2App:
    """A client for this request (cheap: no network once the document is cached)."""
    registry = OAuth()
    registry.register(
        _NAME,
        client_id=settings.OIDC_CLIENT_ID,
        client_secret=settings.OIDC_CLIENT_SECRET,
        client_kwargs={
            "scope": " ".join(settings.ADMIN_OIDC_SCOPES),
            "code_challenge_method": "S256",
            "default_timeout": FETCH_TIMEOUT_SECONDS,
        },
        **metadata(),
    )
    return registry.create_client(_NAME)


def enabled() -> bool:
    """OpenID sign-in needs an external issuer and a client of it (without a client the
    back-office is password-only)."""
    return bool(settings.OIDC_ISSUER and settings.OIDC_CLIENT_ID and settings.OIDC_CLIENT_SECRET)


def display_name() -> str:
    """What the sign-in button names: ADMIN_OIDC_NAME, else the issuer's host."""
    if settings.ADMIN_OIDC_NAME:
        return settings.ADMIN_OIDC_NAME
    return settings.OIDC_ISSUER.split("://", 1)[-1].split("/", 1)[0]

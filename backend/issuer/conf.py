"""Settings for the built-in issuer (django-oauth-toolkit), computed once by the settings module.

Kept free of Django models so `backend/settings/base.py` can import it. The issuer URL is pinned
(`OIDC_ISS_ENDPOINT`) because DOT would otherwise derive it from each request's Host header, which
changes behind proxies and would make `iss` unpredictable for the validator.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.exceptions import ImproperlyConfigured

# The API's scopes: the only ones the built-in issuer grants and `createclient` accepts.
API_SCOPES: dict[str, str] = {
    "customers:read": "Read customers",
    "customers:write": "Create, update and delete customers",
    "orders:read": "Read orders",
    "orders:write": "Place orders",
    "webhooks:manage": "Manage webhook endpoints (contract section 9)",
}

ACCESS_TOKEN_LIFETIME_SECONDS = 15 * 60
MIN_RSA_BITS = 2048


def generate_private_key_pem() -> str:
    """A fresh RSA-2048 private key in PKCS#8 PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _checked_pem(pem: str, *, source: str) -> str:
    # Platforms that cannot hold multi-line values often store PEMs with literal "\n".
    pem = pem.strip().replace("\\n", "\n") + "\n"
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise ImproperlyConfigured(
            f"{source} must be an unencrypted PEM-encoded RSA private key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_RSA_BITS:
        raise ImproperlyConfigured(
            f"{source} must be an RSA private key of at least {MIN_RSA_BITS} bits"
        )
    return pem


def _dev_key(path: Path) -> str:
    """Load or create the debug-only signing key so tokens survive restarts."""
    try:
        return _checked_pem(path.read_text(), source=str(path))
    except FileNotFoundError:
        pass
    pem = generate_private_key_pem()
    try:
        # O_EXCL: when two processes start together, one writes and the other reads its key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _checked_pem(path.read_text(), source=str(path))
    with os.fdopen(fd, "w") as handle:
        handle.write(pem)
    return pem


def builtin_issuer_url(public_url: str) -> str:
    return public_url.rstrip("/") + "/o"


def oauth2_provider_settings(
    *,
    public_url: str,
    private_key_pem: str | None,
    debug: bool,
    dev_key_path: Path,
    external_issuer: str | None,
) -> dict[str, Any]:
    """The OAUTH2_PROVIDER dict.

    Precondition: called at settings import. With an external issuer the built-in one is off
    (`/o/` is not routed) and no key is required.
    """
    if private_key_pem is not None:
        pem = _checked_pem(private_key_pem, source="OIDC_RSA_PRIVATE_KEY")
    elif external_issuer is not None:
        pem = ""
    elif debug:
        pem = _dev_key(dev_key_path)
    else:
        raise ImproperlyConfigured(
            "OIDC_RSA_PRIVATE_KEY must be set (PEM RSA private key for the built-in issuer) "
            "when OIDC_ISSUER is unset and DJANGO_DEBUG is off"
        )
    return {
        "OIDC_ENABLED": True,
        "OIDC_RSA_PRIVATE_KEY": pem,
        "OIDC_ISS_ENDPOINT": builtin_issuer_url(public_url),
        "SCOPES": dict(API_SCOPES),
        # DOT's default "__all__" would hand every scope to a request that names none.
        "DEFAULT_SCOPES": [],
        "ACCESS_TOKEN_EXPIRE_SECONDS": ACCESS_TOKEN_LIFETIME_SECONDS,
        "ACCESS_TOKEN_GENERATOR": "backend.issuer.tokens.generate_access_token",
        # Otherwise oauthlib reuses the access-token generator for refresh tokens.
        "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
        # Each client gets only the scopes `createclient` registered for it.
        "SCOPES_BACKEND_CLASS": "backend.issuer.scopes.ClientScopes",
        # Salted SHA-256 for 128-character random secrets (backend/issuer/hashers.py).
        "CLIENT_SECRET_HASHER": "duka_secret_sha256",
        "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
        "OAUTH2_GRANT_TYPES_SUPPORTED": ["client_credentials"],
        "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
        # RFC 9700 hardening (silences oauth2_provider.W001-W010 under `check --deploy`).
        "PKCE_REQUIRED": True,
        "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
        "ALLOW_URI_WILDCARDS": False,
        "REFRESH_TOKEN_REUSE_PROTECTION": True,
        "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
        "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
        "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
        "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
        "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
        "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
        "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
        "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
        "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
        "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    }


_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def check_issuer_url(url: str, *, name: str) -> None:
    """Plain http only for loopback hosts: anything else would let a network attacker swap keys."""
    parsed = urlsplit(url)
    host = (parsed.hostname or "").lower()
    if parsed.scheme == "https" and host:
        return
    if parsed.scheme == "http" and (host in _LOOPBACK_HOSTS or host.startswith("127.")):
        return
    raise ImproperlyConfigured(f"{name} must be an https:// URL (http:// only for loopback hosts)")

"""OpenID Connect access-token validation: the process-wide validator built from settings.

The parts, each in its own module because each changes for its own reasons:

* `oidc_claims`: what claims mean (the caller, scopes, ID-token refusal) and the errors;
* `oidc_http`: bounded HTTP to the issuer and its discovery document;
* `oidc_keys`: JWKS parsing and the remote key cache;
* `oidc_jwt`: signed-JWT validation (with its memo of accepted tokens);
* `oidc_introspection`: RFC 7662 introspection of opaque tokens.

With the built-in issuer (`OIDC_ISSUER` unset) the keys come from the issuer app itself, which
registers a loader with `use_builtin_jwks` when Django starts (fetching our own JWKS over HTTP
could deadlock a single sync worker, and this package imports nothing of ours but settings).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from backend.integrations.oidc_claims import (
    DEFAULT_SCOPE_CLAIMS,
    IntrospectionLimited,
    InvalidToken,
    IssuerUnavailable,
    OidcError,
    Principal,
    scopes_from_claims,
)
from backend.integrations.oidc_http import Discovery
from backend.integrations.oidc_introspection import Introspector
from backend.integrations.oidc_jwt import TokenValidator
from backend.integrations.oidc_keys import (
    REFRESH_COOLDOWN_SECONDS,
    KeySource,
    RemoteKeys,
    StaticKeys,
    keys_from_jwks,
)

__all__ = [
    "DEFAULT_SCOPE_CLAIMS",
    "REFRESH_COOLDOWN_SECONDS",
    "IntrospectionLimited",
    "InvalidToken",
    "IssuerUnavailable",
    "OidcError",
    "Principal",
    "RemoteKeys",
    "StaticKeys",
    "TokenValidator",
    "build_validator",
    "discovery",
    "get_validator",
    "keys_from_jwks",
    "reset_validator",
    "scopes_from_claims",
    "use_builtin_jwks",
    "validate",
]

_builtin_jwks: Callable[[], Mapping[str, Any]] | None = None


def use_builtin_jwks(loader: Callable[[], Mapping[str, Any]]) -> None:
    """Register the built-in issuer's public JWKS (called by its app's `ready()`)."""
    global _builtin_jwks
    _builtin_jwks = loader
    reset_validator()


def build_validator() -> TokenValidator:
    """A validator for the configured issuer (settings.OIDC_ISSUER, or the built-in one)."""
    scope_claims = tuple(settings.OIDC_SCOPE_CLAIMS)
    introspector = None
    if settings.OIDC_ISSUER:
        issuer = settings.OIDC_ISSUER
        discovery = Discovery(issuer)
        keys: KeySource = RemoteKeys(issuer, discovery=discovery)
        # Introspection needs a client of the issuer; without one, opaque tokens are a 401.
        if settings.OIDC_CLIENT_ID and settings.OIDC_CLIENT_SECRET:
            introspector = Introspector(
                issuer=issuer,
                audience=settings.OIDC_AUDIENCE,
                client_id=settings.OIDC_CLIENT_ID,
                client_secret=settings.OIDC_CLIENT_SECRET,
                discovery=discovery,
                scope_claims=scope_claims,
            )
    else:
        if _builtin_jwks is None:
            raise RuntimeError("the built-in issuer has not registered its keys (app not ready?)")
        issuer = settings.OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"]
        keys = StaticKeys(keys_from_jwks(_builtin_jwks()))
    require_typ = settings.OIDC_REQUIRE_TYP
    if require_typ is None:  # unset: on for our own tokens, off for an external issuer's
        require_typ = not settings.OIDC_ISSUER
    return TokenValidator(
        issuer=issuer,
        audience=settings.OIDC_AUDIENCE,
        algorithms=settings.OIDC_ALGORITHMS,
        keys=keys,
        scope_claims=scope_claims,
        introspector=introspector,
        require_typ=require_typ,
    )


_validator: TokenValidator | None = None
_validator_lock = threading.Lock()


def get_validator() -> TokenValidator:
    """The process-wide validator, built on first use (its key cache must be shared)."""
    global _validator
    validator = _validator
    if validator is None:
        with _validator_lock:
            if _validator is None:
                _validator = build_validator()
            validator = _validator
    return validator


def reset_validator() -> None:
    """Forget the process-wide validator (settings changed, or a test wants a cold cache)."""
    global _validator
    with _validator_lock:
        _validator = None


def discovery() -> Discovery:
    """The external issuer's discovery document, fetched once per process and shared with token
    validation (the back-office sign-in reads its endpoints from it). Only with OIDC_ISSUER set."""
    keys = get_validator().keys
    if not isinstance(keys, RemoteKeys):
        raise RuntimeError("no external issuer is configured (OIDC_ISSUER is unset)")
    return keys.discovery


def validate(token: str, *, caller: str | None = None) -> Principal:
    return get_validator().validate(token, caller=caller)


_SETTINGS_THAT_MATTER = {
    "OIDC_ISSUER",
    "OIDC_AUDIENCE",
    "OIDC_ALGORITHMS",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_SCOPE_CLAIMS",
    "OIDC_REQUIRE_TYP",
    "OAUTH2_PROVIDER",
}


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in _SETTINGS_THAT_MATTER:
        reset_validator()


setting_changed.connect(_on_setting_changed)

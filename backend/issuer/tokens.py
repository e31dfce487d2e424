"""RFC 9068 JWT access tokens for the built-in issuer (DOT's ACCESS_TOKEN_GENERATOR).

DOT issues opaque tokens by default and oauthlib's `signed_token_generator` carries no `kid`,
`iss`, `aud` or `sub`, so the resource server could not verify them on its own.
"""

from __future__ import annotations

import functools
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.utils import jwk_from_pem


@functools.lru_cache(maxsize=4)
def _signing_key(pem: str) -> tuple[Any, str]:
    """The loaded private key and its kid (loading an RSA key costs milliseconds)."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    return key, jwk_from_pem(pem).thumbprint()


def generate_access_token(request: Any) -> str:
    """Called by oauthlib as `token_generator(request)` after it set `request.expires_in`."""
    key, kid = _signing_key(oauth2_settings.OIDC_RSA_PRIVATE_KEY)
    now = int(time.time())
    client_id = request.client_id or request.client.client_id
    user = getattr(request, "user", None)
    claims = {
        "iss": oauth2_settings.OIDC_ISS_ENDPOINT,
        "aud": settings.OIDC_AUDIENCE,
        # The client itself is the subject of a client-credentials grant.
        "sub": str(user.pk) if user is not None and user.pk is not None else client_id,
        "client_id": client_id,
        "scope": " ".join(request.scopes or []),
        "iat": now,
        "nbf": now,
        "exp": now + int(request.expires_in),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "at+jwt"})

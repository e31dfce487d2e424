"""The built-in issuer's public keys, exactly as its JWKS endpoint publishes them.

The resource-server side (`backend.integrations.oidc`) verifies our own tokens with these
without an HTTP round trip to ourselves; the issuer app registers `builtin_jwks` with it.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from oauth2_provider.utils import jwk_from_pem  # DOT's own kid (RFC 7638 thumbprint)


def builtin_jwks() -> dict[str, Any]:
    """The public JWKS of the active signing key and the inactive ones still published."""
    provider = settings.OAUTH2_PROVIDER
    pems = [provider["OIDC_RSA_PRIVATE_KEY"], *provider.get("OIDC_RSA_PRIVATE_KEYS_INACTIVE", [])]
    keys = []
    for pem in pems:
        key = jwk_from_pem(pem)
        keys.append(
            {
                "alg": "RS256",
                "use": "sig",
                "kid": key.thumbprint(),
                **json.loads(key.export_public()),
            }
        )
    return {"keys": keys}

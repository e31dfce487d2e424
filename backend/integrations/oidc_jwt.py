"""Validation of bearer tokens: signed JWTs here, opaque ones handed to introspection.

Every failure a token can cause surfaces as `InvalidToken`; pyjwt raises TypeError/ValueError on
some malformed input, so decoding is wrapped broadly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from backend.integrations.oidc_claims import (
    DEFAULT_SCOPE_CLAIMS,
    LEEWAY_SECONDS,
    InvalidToken,
    Principal,
    client_id_from,
    refuse_id_token,
    scopes_from_claims,
)
from backend.integrations.oidc_introspection import Introspector
from backend.integrations.oidc_keys import KeySource, VerificationKey

MAX_TOKEN_LENGTH = 8192
# RFC 9068 section 2.1 `typ` values; media types compare case-insensitively (RFC 7515 4.1.9).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    kid: str
    key: VerificationKey
    expires: float  # the token's `exp`


class TokenValidator:
    """Validates access tokens, remembering the JWTs it accepted.

    Clients reuse a token for many requests, and a full check (two JWT parses and an RSA
    signature verification) was the largest part of a cheap request's time. A token seen before
    is accepted again only while it has not reached its `exp` and the key that verified it is
    still the one the key source serves for its `kid`, so a key rotated out, or a refreshed key
    set, sends it through the full check again. Only accepted tokens are remembered, at most
    `VERIFIED_TOKENS` of them per process.

    With `require_typ` (OIDC_REQUIRE_TYP) the header `typ` must be `at+jwt` (RFC 9068), so an
    ID token or another signed JWT of the same issuer is refused before its signature is checked.

    A token that is not a compact JWS (opaque, or an encrypted JWT) goes to `introspector` when
    the issuer offers introspection, and is refused otherwise.
    """

    VERIFIED_TOKENS = 1024

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithms: Iterable[str],
        keys: KeySource,
        scope_claims: Sequence[str] = DEFAULT_SCOPE_CLAIMS,
        introspector: Introspector | None = None,
        leeway: int = LEEWAY_SECONDS,
        require_typ: bool = False,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.algorithms = frozenset(algorithms)
        self.keys = keys
        self.scope_claims = tuple(scope_claims)
        self.introspector = introspector
        self.leeway = leeway
        self.require_typ = require_typ
        self._verified: dict[str, _Verified] = {}
        if self.algorithms & {"none", "HS256", "HS384", "HS512"}:
            raise ValueError("symmetric or 'none' algorithms are never accepted")

    def validate(self, token: str, *, caller: str | None = None) -> Principal:
        """The principal behind `token`; `caller` is the presenting address (introspection limits
        unknown tokens per address). Raises InvalidToken, IssuerUnavailable or
        IntrospectionLimited, nothing else."""
        seen = self._verified.get(token) if isinstance(token, str) else None
        if seen is not None:
            if time.time() < seen.expires and self.keys.get(seen.kid) is seen.key:
                return seen.principal
            self._verified.pop(token, None)
        if not isinstance(token, str) or not token:
            raise InvalidToken("the bearer token is empty")
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("the bearer token is too long")
        if token.count(".") != 2:
            if self.introspector is not None:
                return self.introspector.introspect(token, caller=caller)
            raise InvalidToken("the bearer token is not a signed JWT")
        try:
            header = jwt.get_unverified_header(token)
        except Exception:
            raise InvalidToken("the token header cannot be decoded") from None
        alg = header.get("alg")
        kid = header.get("kid")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken("the token's signing algorithm is not accepted")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the token has no key id (kid)")
        typ = header.get("typ")
        if self.require_typ and (not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES):
            raise InvalidToken("the token is not an RFC 9068 access token (typ must be at+jwt)")
        key = self.keys.get(kid)
        if key is None:
            raise InvalidToken("the token is signed with an unknown key")
        if not key.accepts(alg):
            raise InvalidToken("the token's algorithm does not match its key")
        claims = self._decode(token, key.public_key, alg)
        refuse_id_token(claims)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise InvalidToken("the token has no subject (sub)")
        principal = Principal(
            subject=subject,
            client_id=client_id_from(claims),
            scopes=scopes_from_claims(claims, self.scope_claims),
        )
        expires = claims["exp"]
        if isinstance(expires, int | float) and not isinstance(expires, bool):
            if len(self._verified) >= self.VERIFIED_TOKENS:
                self._verified.clear()  # rare (that many live tokens per process) and cheap
            self._verified[token] = _Verified(
                principal=principal, kid=kid, key=key, expires=float(expires)
            )
        return principal

    def _decode(self, token: str, key: Any, alg: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is not meant for this API (aud)") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token comes from another issuer (iss)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token signature does not verify") from None
        except Exception:
            raise InvalidToken("the token is malformed") from None
        if not isinstance(claims, dict):
            raise InvalidToken("the token is malformed")
        return claims

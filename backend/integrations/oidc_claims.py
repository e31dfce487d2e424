"""What an access token's claims mean to us: the caller, its scopes, and the errors we raise.

Shared by both ways a token is validated (a signed JWT, or RFC 7662 introspection of an opaque
token), so the two apply the same rules and give the same answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LEEWAY_SECONDS = 30
# Claims that carry scopes when OIDC_SCOPE_CLAIMS is unset: the RFC 9068 `scope` string, Okta's
# and Azure's `scp`, Auth0's `permissions`.
DEFAULT_SCOPE_CLAIMS: tuple[str, ...] = ("scope", "scp", "permissions")
# An OpenID Connect ID token carries these; an access token never does (RFC 9068, OIDC core).
ID_TOKEN_CLAIMS: tuple[str, ...] = ("nonce", "at_hash", "c_hash")


class OidcError(Exception):
    """Root of the errors the OIDC integration raises."""


class InvalidToken(OidcError):
    """The token is not acceptable. `reason` is safe to show to the caller (no token data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IssuerUnavailable(OidcError):
    """The issuer is needed to judge this token (no key cached, or introspection) and is down."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the token issuer is unreachable; retry in {retry_after} s")
        self.retry_after = retry_after


class IntrospectionLimited(OidcError):
    """Too many tokens not in the introspection cache from this caller (or from everyone) just
    now: the token is not judged, and the caller may retry after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many unknown tokens; retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    """Who called: `request.auth` in the API. `str()` is the subject (ninja throttles hash it)."""

    subject: str
    client_id: str | None
    scopes: frozenset[str]

    def __str__(self) -> str:
        return self.subject


def _string_items(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return ()


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The claim named `path`: the literal name first (Auth0's namespaced claims are URLs with
    dots), then a dotted walk through nested objects (`realm_access.roles`)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def scopes_from_claims(
    claims: Mapping[str, Any], paths: Sequence[str] = DEFAULT_SCOPE_CLAIMS
) -> frozenset[str]:
    """The union of the scopes carried by the claims at `paths` (space-separated strings or lists
    of strings; any other shape carries none)."""
    scopes: set[str] = set()
    for path in paths:
        scopes.update(_string_items(claim_at(claims, path)))
    return frozenset(scopes)


def client_id_from(claims: Mapping[str, Any]) -> str | None:
    # RFC 9068 `client_id`; Auth0, Keycloak and Azure v2 use `azp`; Azure v1 `appid`.
    for claim in ("client_id", "azp", "appid"):
        value = claims.get(claim)
        if isinstance(value, str) and value:
            return value
    return None


def refuse_id_token(claims: Mapping[str, Any]) -> None:
    """An ID token proves a login to its client; accepting it as an access token would let any
    relying party of the issuer call us with the user's ID token."""
    if any(claim in claims for claim in ID_TOKEN_CLAIMS):
        raise InvalidToken("the token is an OpenID Connect ID token, not an access token")

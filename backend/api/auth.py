"""Bearer-token authentication and per-route scopes for the ninja API (contract section 3).

Answers, all RFC 9457 problem+json:

* no `Authorization` header (or an empty one): 401, `WWW-Authenticate: Bearer`;
* any other header that does not carry an acceptable token, including another scheme such as
  `Basic` and `Bearer` without a token: 401, `WWW-Authenticate: Bearer error="invalid_token"`.
  RFC 6750 would allow leaving out the error for an unsupported scheme, but the contract keeps
  the bare challenge for an absent header only, and a client that sent credentials learns more
  from being told they were not accepted;
* a valid token without the route's scope: 403, `Bearer error="insufficient_scope", scope="…"`;
* the issuer unreachable with no key ever fetched: 503 with `Retry-After`;
* too many opaque tokens unknown to the introspection cache from one address: 429 with
  `Retry-After`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError
from ninja.security import HttpBearer
from ninja.security.base import SecuritySchema

from backend.integrations import oidc
from backend.issuer.conf import API_SCOPES
from backend.limits import client_address
from backend.problems import problem_response

logger = logging.getLogger(__name__)


class MissingToken(AuthenticationError):
    def __init__(self) -> None:
        super().__init__(message="This endpoint needs an 'Authorization: Bearer <token>' header.")


class InvalidToken(AuthenticationError):
    def __init__(self, reason: str) -> None:
        super().__init__(message=f"The access token is not valid: {reason}.")


class InsufficientScope(AuthorizationError):
    """`scope`: the missing scope, or several separated by spaces (RFC 6750's `scope`)."""

    def __init__(self, scope: str) -> None:
        names = " and ".join(repr(name) for name in scope.split())
        plural = "s" if " " in scope else ""
        super().__init__(message=f"The access token lacks the {names} scope{plural}.")
        self.scope = scope


def security_scheme() -> SecuritySchema:
    """OpenAPI scheme for Swagger UI's Authorize button, pointing at the configured issuer."""
    if settings.OIDC_ISSUER:
        url = settings.OIDC_ISSUER.rstrip("/") + "/.well-known/openid-configuration"
        return SecuritySchema(type="openIdConnect", openIdConnectUrl=url)
    # Relative, so the browser posts to the origin it loaded the docs from (no CORS needed).
    flow = {"tokenUrl": "/o/token/", "scopes": dict(API_SCOPES)}
    return SecuritySchema(
        type="oauth2",
        flows={"clientCredentials": flow},
        description="Client credentials from `python manage.py createclient NAME --scopes ...`.",
    )


class ScopedBearer(HttpBearer):
    """Accepts a valid access token carrying `scope`; `request.auth` becomes the Principal."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__()
        # Replaces the schema ninja builds from `openapi_*` attributes, whose stray
        # `"scheme": "bearer"` does not belong in an oauth2/openIdConnect scheme.
        self.openapi_security_schema = security_scheme()

    def __call__(self, request: HttpRequest) -> oidc.Principal:
        value = request.headers.get(self.header, "").strip()
        if not value:
            raise MissingToken()
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer":
            raise InvalidToken("the Authorization scheme must be Bearer")
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> oidc.Principal:
        try:
            principal = oidc.validate(token, caller=client_address(request))
        except oidc.InvalidToken as exc:
            logger.debug("refused a bearer token: %s", exc.reason)
            raise InvalidToken(exc.reason) from None
        if self.scope not in principal.scopes:
            raise InsufficientScope(self.scope)
        return principal


def _principal(request: HttpRequest) -> oidc.Principal:
    principal = getattr(request, "auth", None)
    if not isinstance(principal, oidc.Principal):  # an operation without `auth=require(...)`
        raise MissingToken()
    return principal


def subject_of(request: HttpRequest) -> str:
    """The caller's token `sub`, on an operation with `auth=require(...)`."""
    return _principal(request).subject


def require_also(request: HttpRequest, scopes: Iterable[str]) -> None:
    """For an operation whose scopes depend on its input (a webhook subscription needs the read
    scope of what its events carry): the same 403 as `require`, naming every missing scope."""
    missing = sorted(set(scopes) - _principal(request).scopes)
    if missing:
        raise InsufficientScope(" ".join(missing))


def require(scope: str) -> ScopedBearer:
    """`auth=require("orders:write")` on a router or operation."""
    if scope not in API_SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return ScopedBearer(scope)


def _authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    if isinstance(exc, InvalidToken):
        challenge, code = 'Bearer error="invalid_token"', "invalid-token"
    else:  # MissingToken, or ninja's own bare AuthenticationError when no auth matched
        challenge, code = "Bearer", "missing-token"
    return problem_response(401, exc.message, code=code, headers={"WWW-Authenticate": challenge})


def _authorization_error(request: HttpRequest, exc: AuthorizationError) -> HttpResponse:
    scope = getattr(exc, "scope", None)
    challenge = 'Bearer error="insufficient_scope"'
    if scope:
        challenge += f', scope="{scope}"'
    return problem_response(
        403, exc.message, code="insufficient-scope", headers={"WWW-Authenticate": challenge}
    )


def _issuer_unavailable(request: HttpRequest, exc: oidc.IssuerUnavailable) -> HttpResponse:
    return problem_response(
        503,
        "The token issuer cannot be reached to verify the access token; retry later.",
        code="issuer-unavailable",
        headers={"Retry-After": str(exc.retry_after)},
    )


def _introspection_limited(request: HttpRequest, exc: oidc.IntrospectionLimited) -> HttpResponse:
    return problem_response(
        429,
        "Too many unknown access tokens from this address; retry later.",
        code="too-many-unknown-tokens",
        headers={"Retry-After": str(exc.retry_after)},
    )


def register_auth_error_handlers(api: NinjaAPI) -> None:
    """Problem+json answers for the auth errors (registered per class: ninja walks the MRO)."""
    handlers: list[tuple[type[Exception], Any]] = [
        (AuthenticationError, _authentication_error),
        (AuthorizationError, _authorization_error),
        (oidc.IssuerUnavailable, _issuer_unavailable),
        (oidc.IntrospectionLimited, _introspection_limited),
    ]
    for exc_class, handler in handlers:
        api.add_exception_handler(exc_class, handler)

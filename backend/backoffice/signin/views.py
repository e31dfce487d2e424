"""OpenID Connect sign-in and RP-initiated sign-out for the back-office.

`start` sends the browser to the issuer (authorization code + PKCE), `callback` finishes the
sign-in and grants the roles the claims carry (or refuses with a page saying why), `sign_out`
ends the session here and, for an OpenID session, at the issuer (end_session_endpoint with
id_token_hint and post_logout_redirect_uri). No outcome of a sign-in is a 5xx: an unreachable
issuer is a 503 page, anything refused a 4xx page.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from authlib.common.errors import AuthlibBaseError
from authlib.oidc.core import UserInfo
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from joserfc.errors import JoseError
from requests import RequestException

from backend.backoffice import roles
from backend.backoffice.signin import claims as signin_claims
from backend.backoffice.signin import passwords, provider

logger = logging.getLogger(__name__)

BACKEND = "backend.backoffice.signin.passwords.LimitedModelBackend"
_ID_TOKEN = "backoffice_oidc_id_token"  # noqa: S105  # a session key, not a secret
_NEXT = "backoffice_oidc_next"


def _refused(request: HttpRequest, status: int, reason: str, **extra: Any) -> HttpResponse:
    context = {"reason": reason, "status": status, "login_url": reverse("admin:login"), **extra}
    response = render(request, "backoffice/signin_refused.html", context, status=status)
    if "retry_after" in extra:
        response["Retry-After"] = str(extra["retry_after"])
    return response


def _too_many(request: HttpRequest, wait: int) -> HttpResponse:
    return _refused(
        request, 429, "Too many failed sign-ins from here. Try again later.", retry_after=wait
    )


def _unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.warning("back-office sign-in: the issuer is unreachable (%s)", type(exc).__name__)
    response = _refused(request, 503, "The identity provider cannot be reached. Try again soon.")
    response["Retry-After"] = "10"
    return response


def _safe_next(request: HttpRequest, target: str | None) -> str:
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:index")


@require_GET
def start(request: HttpRequest) -> HttpResponse:
    """Redirect to the issuer's authorization endpoint (state, nonce and PKCE kept in the session)."""
    if not provider.enabled():
        raise Http404("OpenID sign-in needs OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
    wait = passwords.refused_for(request)
    if wait is not None:
        return _too_many(request, wait)
    try:
        client = provider.client()
    except Exception as exc:  # the discovery document: network, status, JSON
        return _unavailable(request, exc)
    request.session[_NEXT] = _safe_next(request, request.GET.get("next"))
    return client.authorize_redirect(
        request, request.build_absolute_uri(reverse("backoffice-oidc-callback"))
    )


@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """Finish the sign-in: exchange the code, validate the ID token, map the roles claim."""
    if not provider.enabled():
        raise Http404("OpenID sign-in needs OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
    wait = passwords.refused_for(request)
    if wait is not None:
        return _too_many(request, wait)
    try:
        client = provider.client()
        token = client.authorize_access_token(request)
        id_claims: Mapping[str, Any] = token.get("userinfo") or {}
        userinfo = _userinfo(client, token) if signin_claims.needs_userinfo(id_claims) else None
    except (AuthlibBaseError, JoseError) as exc:
        # A stale or forged callback (state), an error answer, a code or an ID token that fails.
        passwords.record_failure(request)
        logger.info("back-office sign-in refused: %s: %s", type(exc).__name__, exc)
        return _refused(request, 400, "The sign-in could not be completed. Please start again.")
    except (RequestException, OSError, ValueError) as exc:  # network, status, not JSON
        return _unavailable(request, exc)
    subject = id_claims.get("sub")
    if not isinstance(subject, str) or not subject:
        passwords.record_failure(request)
        return _refused(request, 400, "The identity provider did not say who signed in.")
    if userinfo is not None and userinfo.get("sub") != subject:
        # OIDC Core 5.3.2: must be the same person.
        passwords.record_failure(request, signin_claims.username_for(subject))
        return _refused(request, 400, "The identity provider's answers do not agree.")
    granted = signin_claims.configured_roles(signin_claims.roles_source(id_claims, userinfo))
    claims = {**(userinfo or {}), **id_claims}
    if not granted:
        _take_roles_away(subject)
        passwords.record_failure(request, signin_claims.username_for(subject))
        return _refused(
            request,
            403,
            "Your account has no back-office role.",
            claim=settings.ADMIN_ROLES_CLAIM,
            viewer_values=settings.ADMIN_VIEWER_ROLES,
            operator_values=settings.ADMIN_OPERATOR_ROLES,
            who=claims.get("name") or claims.get("email") or subject,
        )
    user = _user_with_roles(subject, claims, granted)
    target = request.session.pop(_NEXT, None)
    auth_login(request, user, backend=BACKEND)
    request.session[_ID_TOKEN] = token["id_token"]
    return HttpResponseRedirect(_safe_next(request, target))


def _userinfo(client: Any, token: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if not provider.metadata().get("userinfo_endpoint"):
        return None
    info: UserInfo = client.userinfo(token=token)
    return dict(info)


def _take_roles_away(subject: str) -> None:
    """A person refused now who had an account keeps it, without any role (no account is
    created for people who may not enter)."""
    user = get_user_model().objects.filter(username=signin_claims.username_for(subject)).first()
    if user is not None:
        roles.apply_roles(user, ())


@transaction.atomic
def _user_with_roles(subject: str, claims: Mapping[str, Any], granted: frozenset[str]) -> Any:
    """The person's account (created on first sign-in, without a usable password), with names
    refreshed and exactly the granted roles: a role taken away at the provider is gone here at
    the next sign-in."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=signin_claims.username_for(subject))
    if created:
        user.set_unusable_password()
    user.email = str(claims.get("email") or "")[:254]
    user.first_name = str(claims.get("given_name") or claims.get("name") or "")[:150]
    user.last_name = str(claims.get("family_name") or "")[:150]
    user.save()
    roles.apply_roles(user, granted)
    return user


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    """Sign out here; an OpenID session is also ended at the issuer, which sends the browser
    back to the login page. (Takes the admin's own /admin/logout/ address.)"""
    id_token = request.session.get(_ID_TOKEN)
    auth_logout(request)
    login_url = request.build_absolute_uri(reverse("admin:login"))
    if not id_token or not provider.enabled():
        return HttpResponseRedirect(login_url)
    try:
        client = provider.client()
        logout = client.create_logout_url(
            post_logout_redirect_uri=login_url,
            id_token_hint=id_token,
            client_id=settings.OIDC_CLIENT_ID,
        )
    except Exception as exc:  # unreachable issuer, or none to call: signed out here all the same
        logger.warning("back-office sign-out: not ended at the issuer (%s)", exc)
        return HttpResponseRedirect(login_url)
    return HttpResponseRedirect(logout["url"])

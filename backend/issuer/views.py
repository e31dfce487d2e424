"""The built-in issuer's token endpoint: DOT's, with the request's shape checked before it runs
and failed client authentications counted after (backend/issuer/throttling.py)."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any
from urllib.parse import unquote_plus

from django.contrib.auth.hashers import identify_hasher, make_password
from django.http import HttpRequest, HttpResponse, JsonResponse
from oauth2_provider import views
from oauth2_provider.models import get_application_model

from backend.issuer import throttling
from backend.issuer.hashers import ALGORITHM

logger = logging.getLogger(__name__)

GRANT_TYPE = "client_credentials"


def _too_many(wait: int) -> HttpResponse:
    # RFC 6749 has no error code for this; the contract answers every 4xx in problem+json.
    body = {
        "type": "https://duka.dev/problems/too-many-failed-authentications",
        "title": "Too Many Requests",
        "status": 429,
        "detail": f"Too many failed client authentications; retry in {wait} s.",
    }
    response = HttpResponse(json.dumps(body), status=429, content_type="application/problem+json")
    response["Retry-After"] = str(wait)
    return response


def _oauth_error(error: str, description: str) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=400)
    response["Cache-Control"] = "no-store"
    return response


def refusal(request: HttpRequest) -> JsonResponse | None:
    """A 400 for a request this issuer does not serve, decided before DOT runs.

    Only the client-credentials grant: DOT's other grants are either off (password ran Django's
    `authenticate`) or crash on malformed input (device_code without a code was a 500). Credentials
    in both HTTP Basic and the form are ambiguous (RFC 6749 section 2.3): DOT falls back from a
    failed Basic to the form, so a decoy id in Basic was counted while the form's id was tried.
    """
    grant_types = request.POST.getlist("grant_type")
    if len(grant_types) != 1 or not grant_types[0]:
        return _oauth_error("invalid_request", "send exactly one grant_type, as a form field")
    if grant_types[0] != GRANT_TYPE:
        return _oauth_error(
            "unsupported_grant_type", f"this issuer serves only grant_type={GRANT_TYPE}"
        )
    basic = throttling.basic_credentials(request)
    if basic is not None:
        body_id = request.POST.get("client_id")
        if "client_secret" in request.POST or (
            body_id is not None and body_id != throttling.claimed_client_id(request)
        ):
            return _oauth_error(
                "invalid_request",
                "send the client credentials either as HTTP Basic or as form fields, not both",
            )
        # DOT recognises only "Basic" spelled so; the scheme is case-insensitive (RFC 9110).
        request.META["HTTP_AUTHORIZATION"] = f"Basic {basic}"
    return None


class TokenView(views.TokenView):
    """Client credentials only; the right credentials always get a token, failures are limited."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        refused = refusal(request)
        if refused is not None:
            return refused
        response: HttpResponse = super().post(request, *args, **kwargs)
        if response.status_code == 200:
            rehash_secret(request)
        if response.status_code == 401:  # invalid_client: unknown id or wrong secret
            wait = throttling.record_failure(
                client_id=throttling.claimed_client_id(request),
                address=throttling.client_address(request),
            )
            if wait is not None:
                return _too_many(wait)
        return response


def _presented_credentials(request: HttpRequest) -> tuple[str, str] | None:
    """(client_id, secret) as the request sent them (Basic, else the form), or None."""
    basic = throttling.basic_credentials(request)
    if basic is not None:
        try:
            decoded = base64.b64decode(basic, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, _, secret = decoded.partition(":")
        return unquote_plus(client_id), unquote_plus(secret)
    client_id, secret = request.POST.get("client_id"), request.POST.get("client_secret")
    return (client_id, secret) if client_id and secret else None


def rehash_secret(request: HttpRequest) -> None:
    """After a success, store a secret hashed by an older `createclient` (PBKDF2) with the fast
    hasher, so its failures stop costing key-stretching CPU. Precondition: DOT has just accepted
    these credentials; the secret is never logged."""
    credentials = _presented_credentials(request)
    if credentials is None:
        return
    client_id, secret = credentials
    model = get_application_model()
    stored = model.objects.filter(client_id=client_id).values_list("client_secret", flat=True)
    current = stored.first()
    if not current:
        return
    try:
        if identify_hasher(current).algorithm == ALGORITHM:
            return
    except ValueError:
        return  # stored in plain text (hash_client_secret=False): leave it as configured
    model.objects.filter(client_id=client_id, client_secret=current).update(
        client_secret=make_password(secret, hasher=ALGORITHM)
    )
    logger.info("client %s: secret re-hashed with %s", client_id, ALGORITHM)

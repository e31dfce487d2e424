"""The built-in issuer's client-authenticating endpoints: DOT's, behind the failure limit."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from oauth2_provider import views

from backend.issuer import throttling


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


class LimitFailedClientAuthentication:
    """Refuses a locked client id or address before DOT runs; counts DOT's 401s."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        client_id = throttling.claimed_client_id(request)
        address = throttling.client_address(request)
        wait = throttling.retry_after(client_id=client_id, address=address)
        if wait is not None:
            return _too_many(wait)
        response: HttpResponse = super().post(request, *args, **kwargs)  # type: ignore[misc]
        if response.status_code == 401:  # invalid_client: unknown id or wrong secret
            throttling.record_failure(client_id=client_id, address=address)
        return response


class TokenView(LimitFailedClientAuthentication, views.TokenView):
    pass


class RevokeTokenView(LimitFailedClientAuthentication, views.RevokeTokenView):
    """Revocation authenticates the client too, so it must not be a way around the limit."""

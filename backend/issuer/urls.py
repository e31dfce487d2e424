"""The built-in issuer's endpoints under `/o/` (only when OIDC_ISSUER is unset).

Mount with `path("o/", include("backend.issuer.urls"))`; the namespace is DOT's own
(`oauth2_provider`), which its views reverse. Only what a client-credentials issuer needs is
routed: DOT's application-management and consent pages need sessions and a login, which this
service does not have, and would answer 500 instead of a clean error. Its introspection and
revocation views are not routed either: each checks a client secret (PBKDF2, about 0.3 s of CPU)
outside the token endpoint's limit, and neither has a use here: Duka validates its own JWTs
locally and never introspects them, and a revoked JWT would stay valid until `exp` anyway.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, path, re_path
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views

from backend.issuer.views import TokenView

app_name = "oauth2_provider"


@csrf_exempt
def unsupported(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """Endpoints discovery must name but a client-credentials-only issuer does not serve."""
    body = {
        "error": "unsupported_response_type",
        "error_description": "this issuer supports only the client_credentials grant at /o/token/",
    }
    return JsonResponse(body, status=400)


urlpatterns: list[URLPattern] = []
if not settings.OIDC_ISSUER:
    urlpatterns = [
        path("token/", TokenView.as_view(), name="token"),
        re_path(
            r"^\.well-known/openid-configuration/?$",
            views.ConnectDiscoveryInfoView.as_view(),
            name="oidc-connect-discovery-info",
        ),
        path(".well-known/jwks.json", views.JwksInfoView.as_view(), name="jwks-info"),
        path(
            ".well-known/oauth-authorization-server",
            views.OAuthServerMetadataView.as_view(),
            name="oauth-server-metadata",
        ),
        path("authorize/", unsupported, name="authorize"),
        path("userinfo/", unsupported, name="user-info"),
    ]

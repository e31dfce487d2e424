from django.urls import include, path

from backend.api.app import api
from backend.api.views import bad_request, not_found, server_error

urlpatterns = [
    path("api/v1/", api.urls),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("", include("django_prometheus.urls")),
]

handler400 = bad_request
handler404 = not_found
handler500 = server_error

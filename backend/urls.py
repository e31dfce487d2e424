from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from backend.api.app import api
from backend.api.views import bad_request, not_found, server_error
from backend.health import healthz, readyz
from backend.observability.metrics import metrics_view

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("api/v1/", api.urls),
    path("o/", include("backend.issuer.urls")),  # built-in issuer; empty when OIDC_ISSUER is set
    # django-prometheus' route and name, with a view that adds the database-backed gauges.
    path("metrics", metrics_view, name="prometheus-django-metrics"),
]

if settings.ADMIN_ENABLED:
    # The back-office (backend/backoffice); off, /admin/ is a 404 problem like any unknown path.
    # Its sign-in and sign-out come first: /admin/logout/ ends an OpenID session at the issuer too.
    urlpatterns += [
        path("admin/", include("backend.backoffice.signin.urls")),
        path("admin/", admin.site.urls),
    ]

handler400 = bad_request
handler404 = not_found
handler500 = server_error

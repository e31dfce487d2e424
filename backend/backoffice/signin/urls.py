"""Mounted at /admin/ before the admin's own URLs (so /admin/logout/ is `views.sign_out`)."""

from __future__ import annotations

from django.urls import path

from backend.backoffice.signin import views

urlpatterns = [
    path("oidc/login/", views.start, name="backoffice-oidc-login"),
    path("oidc/callback/", views.callback, name="backoffice-oidc-callback"),
    path("logout/", views.sign_out, name="backoffice-logout"),
]

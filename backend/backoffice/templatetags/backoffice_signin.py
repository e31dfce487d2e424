"""`{% oidc_signin_name %}`: the name on the login page's "Sign in with ..." button, or "" without
an external issuer and a client of it (then password sign-in only)."""

from __future__ import annotations

from django import template

from backend.backoffice.signin import provider

register = template.Library()


@register.simple_tag
def oidc_signin_name() -> str:
    return provider.display_name() if provider.enabled() else ""

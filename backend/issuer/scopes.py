"""DOT scopes backend: a client may obtain only the scopes registered for it."""

from __future__ import annotations

from typing import Any

from oauth2_provider.scopes import BaseScopes

from backend.issuer.conf import API_SCOPES


class ClientScopes(BaseScopes):
    def get_all_scopes(self) -> dict[str, str]:
        return dict(API_SCOPES)

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        if application is None:  # discovery documents list everything the issuer knows
            return list(API_SCOPES)
        from backend.issuer.models import ClientScopes as Registered

        registered = Registered.objects.filter(application=application).first()
        allowed = registered.as_list() if registered else []
        return [scope for scope in allowed if scope in API_SCOPES]

    def get_default_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        # A token request without `scope` gets no API scope (DOT's default would be all of them).
        return []

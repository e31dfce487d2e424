"""Limits on sign-in attempts, the password backend that applies them, and bounded sessions.

Failures are counted per address and per username (for OpenID sign-ins: per subject) in fixed
windows of ADMIN_SIGNIN_FAILURE_WINDOW_S, in the Django cache (Redis when REDIS_URL is set), with
the project's failure counters (backend/limits.py). Refused are only the attempts that must be:
from an address past ADMIN_SIGNIN_FAILURES_PER_ADDRESS failures, every attempt until the window
ends; for a username past ADMIN_SIGNIN_FAILURES_PER_USERNAME, that username's password attempts
(a person's password is guessable, so the right one is refused too while guessing goes on), but
not other users, not sessions already open, and not the OpenID sign-in, which the identity
provider guards itself.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from backend.limits import client_address, count_failure, limit_reached, window_key

# Set on the request when an attempt was refused by a limit: the seconds to wait (the login
# page says so instead of "wrong password").
RETRY_AFTER_ATTR = "signin_retry_after"


def _limits(request: HttpRequest, username: str | None) -> dict[str, int]:
    window = settings.ADMIN_SIGNIN_FAILURE_WINDOW_S
    limits = {
        window_key("admin:signin:address", client_address(request), window): (
            settings.ADMIN_SIGNIN_FAILURES_PER_ADDRESS
        )
    }
    if username:
        limits[window_key("admin:signin:username", username.casefold(), window)] = (
            settings.ADMIN_SIGNIN_FAILURES_PER_USERNAME
        )
    return limits


def refused_for(request: HttpRequest, username: str | None = None) -> int | None:
    """Seconds to wait when this attempt must be refused, else None (nothing is counted)."""
    wait = limit_reached(_limits(request, username), window=settings.ADMIN_SIGNIN_FAILURE_WINDOW_S)
    if wait is not None:
        setattr(request, RETRY_AFTER_ATTR, wait)
    return wait


def record_failure(request: HttpRequest, username: str | None = None) -> None:
    count_failure(_limits(request, username), window=settings.ADMIN_SIGNIN_FAILURE_WINDOW_S)


class LimitedModelBackend(ModelBackend):
    """Django's password backend behind the attempt limits (the admin's login form uses it)."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        if request is None:  # not a sign-in over HTTP (a management command): no limits
            return super().authenticate(request, username, password, **kwargs)
        if refused_for(request, username) is not None:
            raise PermissionDenied  # no other backend is asked, the password is not checked
        user = super().authenticate(request, username, password, **kwargs)
        if user is None:
            record_failure(request, username)
        return user


@receiver(user_logged_in, dispatch_uid="backoffice-bounded-session")
def bound_session(sender: object, request: HttpRequest | None, **kwargs: Any) -> None:
    """A session ends ADMIN_SESSION_SECONDS after sign-in, however busy it is (an absolute
    expiry date: Django's own age is renewed with every save of the session)."""
    if request is not None and hasattr(request, "session"):
        request.session.set_expiry(
            timezone.now() + datetime.timedelta(seconds=settings.ADMIN_SESSION_SECONDS)
        )

"""Password sign-in (the built-in issuer's way in) as a web page: CSRF, cookie flags, a session
with an absolute end, the admin CSP and framing refusal, attempt limits per address and per
username, and the API still taking bearer tokens only."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _fresh_limits() -> None:
    # Only the in-process cache: clear() on a Redis cache is FLUSHDB on a shared server.
    if isinstance(caches["default"], LocMemCache):
        cache.clear()


@pytest.fixture
def admin_user() -> object:
    return get_user_model().objects.create_superuser("boss", "boss@duka.test", PASSWORD)


def log_in(client: Client, username: str = "boss", password: str = PASSWORD) -> object:
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
    )


def test_createsuperuser_then_sign_in(client, monkeypatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("createsuperuser", "--noinput", username="boss", email="boss@duka.test")
    response = log_in(client)
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_session_and_csrf_cookies_are_safe(client, admin_user, settings) -> None:
    page = client.get("/admin/login/")
    csrf = page.cookies["csrftoken"]
    assert csrf["httponly"]
    assert csrf["secure"]  # DEBUG is off in the tests
    assert csrf["samesite"] == "Lax"
    assert csrf["path"] == "/admin/"
    response = log_in(client)
    session = response.cookies[settings.SESSION_COOKIE_NAME]
    assert session["httponly"]
    assert session["secure"]
    assert session["samesite"] == "Lax"
    assert session["path"] == "/admin/"
    assert 0 < int(session["max-age"]) <= settings.ADMIN_SESSION_SECONDS


def test_the_session_ends_a_fixed_time_after_sign_in(client, admin_user, settings) -> None:
    settings.ADMIN_SESSION_SECONDS = 600
    before = timezone.now()
    log_in(client)
    ends = client.session.get_expiry_date()
    assert before + datetime.timedelta(seconds=600) <= ends
    assert ends <= timezone.now() + datetime.timedelta(seconds=600)
    client.get("/admin/")  # activity does not push the end further
    assert client.session.get_expiry_date() == ends


def test_csrf_is_enforced_on_the_login_form(admin_user) -> None:
    strict = Client(enforce_csrf_checks=True)
    response = log_in(strict)
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")  # a page, not an API problem


def test_admin_pages_carry_the_csp_and_refuse_framing(client) -> None:
    response = client.get("/admin/login/")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy
    assert "http" not in directives["script-src"]
    assert response["X-Frame-Options"] == "DENY"


def test_wrong_passwords_for_one_username_are_limited(client, admin_user, settings) -> None:
    settings.ADMIN_SIGNIN_FAILURES_PER_USERNAME = 3
    for _ in range(3):
        page = log_in(client, password="wrong")
        assert page.status_code == 200
        assert "correct username and password" in page.content.decode()
    # Now even the right password is refused for this username, from any address...
    elsewhere = Client(REMOTE_ADDR="127.0.0.8")
    refused = log_in(elsewhere)
    assert refused.status_code == 200
    assert 'id="signin-limited"' in refused.content.decode()
    assert elsewhere.get("/admin/").status_code == 302
    # ...but not another user's.
    get_user_model().objects.create_superuser("other", "o@duka.test", PASSWORD)
    assert log_in(client, "other").status_code == 302


def test_failures_from_one_address_are_limited(client, admin_user, settings) -> None:
    settings.ADMIN_SIGNIN_FAILURES_PER_ADDRESS = 3
    for name in ("a", "b", "c"):
        assert log_in(client, name, "wrong").status_code == 200
    refused = log_in(client)
    assert 'id="signin-limited"' in refused.content.decode()
    # Another address signs in.
    assert log_in(Client(REMOTE_ADDR="127.0.0.7")).status_code == 302


def test_a_successful_sign_in_counts_nothing(client, admin_user, settings) -> None:
    settings.ADMIN_SIGNIN_FAILURES_PER_USERNAME = 1
    for _ in range(3):
        assert log_in(Client()).status_code == 302


def test_the_api_ignores_the_admin_session(client, admin_user) -> None:
    log_in(client)
    response = client.get("/api/v1/customers/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_password_sign_out_goes_back_to_the_login_page(client, admin_user) -> None:
    log_in(client)
    response = client.post("/admin/logout/")
    assert response.status_code == 302
    assert response["Location"] == "http://testserver/admin/login/"
    assert client.get("/admin/").status_code == 302


def test_an_unreachable_cache_lets_sign_ins_through(client, admin_user, settings) -> None:
    """A limiter must not turn a Redis outage into a back-office outage (as at /o/token/)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    settings.ADMIN_SIGNIN_FAILURES_PER_USERNAME = 1
    assert log_in(client, password="wrong").status_code == 200
    assert log_in(client).status_code == 302

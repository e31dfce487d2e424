"""A person in a real browser: signs in to the back-office through the real OpenID provider's
development login page, sees the admin, and signs out at the provider too. No page of ours may
trip its Content-Security-Policy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from backend.integrations import oidc
from tests.browser.conftest import Screen
from tests.fixtures.oidc_provider import OidcProvider, configure, start_oidc_provider

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def provider(live_server: Any, settings: Any) -> Iterator[OidcProvider]:
    """A provider whose client may redirect to this live server, configured as the issuer."""
    started = start_oidc_provider(admin_origins=live_server.url)
    configure(settings, started, ADMIN_OIDC_NAME="Duka Test IdP")
    try:
        yield started
    finally:
        started.stop()
        oidc.reset_validator()


def sign_in_at_provider(screen: Screen, login: str) -> None:
    page = screen.page
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.wait_for_selector("input[name=prompt][value=consent]", state="attached")
    page.click("button[type=submit]")  # consent


def test_sign_in_and_out_through_the_provider(screen: Screen, provider: OidcProvider) -> None:
    page = screen.page
    page.goto(f"{screen.origin}/admin/")
    assert page.url.startswith(f"{screen.origin}/admin/login/")
    screen.shot("01-login")
    page.click("#oidc-signin")
    assert page.url.startswith(provider.issuer)
    sign_in_at_provider(screen, "olive")
    page.wait_for_url(f"{screen.origin}/admin/")
    assert page.text_content("#user-tools strong") == "Olive Operator"
    screen.shot("02-admin-index")

    page.click("#logout-form button[type=submit]")
    page.wait_for_url(re.compile(re.escape(provider.issuer) + r"/session/end.*"))
    page.click("button[autofocus]")  # "Yes, sign me out"
    page.wait_for_url(re.compile(re.escape(f"{screen.origin}/admin/login/") + ".*"))
    screen.shot("03-signed-out")
    page.goto(f"{screen.origin}/admin/")
    assert page.url.startswith(f"{screen.origin}/admin/login/")
    screen.assert_clean()


def test_a_person_without_a_role_sees_why(screen: Screen, provider: OidcProvider) -> None:
    page = screen.page
    page.goto(f"{screen.origin}/admin/login/")
    page.click("#oidc-signin")
    sign_in_at_provider(screen, "nora")
    page.wait_for_selector("#signin-refused")
    assert "no back-office role" in page.inner_text("#signin-refused")
    screen.shot("04-refused")
    screen.assert_clean()


def test_password_sign_in_in_the_browser(screen: Screen, django_user_model: Any) -> None:
    django_user_model.objects.create_superuser("boss", "boss@duka.test", "a long password 1")
    page = screen.page
    page.goto(f"{screen.origin}/admin/login/")
    assert page.locator("#oidc-signin").count() == 0  # the built-in issuer: passwords only
    page.fill("#id_username", "boss")
    page.fill("#id_password", "a long password 1")
    page.click("#login-form input[type=submit]")
    page.wait_for_url(f"{screen.origin}/admin/")
    page.click("#logout-form button[type=submit]")
    page.wait_for_url(re.compile(re.escape(f"{screen.origin}/admin/login/") + ".*"))
    screen.assert_clean()

"""A person in a real browser. An operator signs in through the real OpenID provider's
development login page, finds the orders whose SMS failed, sends one again and sees it `sent` (the
in-process worker and the loopback gateway), and signs out at the provider too. With the built-in
issuer (where its API clients exist: with OIDC_ISSUER set they could get no token, so the screen
offers no rotation), staff sign in with a password and rotate a client's secret. No page of ours
may trip its Content-Security-Policy or fail to load a static file."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from backend.integrations import oidc
from backend.issuer.clients import create_client
from tests.backoffice.conftest import new_customer, new_order
from tests.browser.conftest import SCREENSHOTS, Screen
from tests.fixtures.gateway import Reply
from tests.fixtures.oidc_provider import OidcProvider, configure, start_oidc_provider
from tests.integration.jobs.conftest import wait_for_sms_status

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


def sms_status_shown(screen: Screen, order_id: int) -> str:
    row = screen.page.locator(f"#result_list tr:has(input[value='{order_id}'])")
    return row.locator("td.field-sms_status").inner_text().strip()


def test_an_operator_resends_a_failed_sms_and_signs_out(
    screen: Screen, provider: OidcProvider, gateway_settings: Any, stub_worker: Any
) -> None:
    gateway_settings.script(Reply(status_code=403))  # the first SMS is refused for good
    customer = new_customer()
    failed = new_order(customer, item="Kettle")
    wait_for_sms_status(failed, "failed")
    sent = new_order(new_customer("AMANI", "Amani Otieno"), item="Radio")  # accepted
    wait_for_sms_status(sent, "sent")

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

    page.click("a[href='/admin/backoffice/order/']")
    page.click("#changelist-filter a[href*='sms_status=failed']")
    page.wait_for_url(re.compile(r".*sms_status=failed.*"))
    assert sms_status_shown(screen, failed) == "failed"
    assert page.locator(f"#result_list input[value='{sent}']").count() == 0
    screen.shot("03-orders-failed")

    page.check(f"#result_list input[name=_selected_action][value='{failed}']")
    page.select_option("select[name=action]", "resend_sms")
    page.click("button[name=index]")
    page.wait_for_selector("ul.messagelist li.success")  # the action's answer
    assert page.locator("ul.messagelist li.error").count() == 0
    wait_for_sms_status(failed, "sent")
    page.goto(f"{screen.origin}/admin/backoffice/order/")
    for _ in range(20):  # the page shows the read model, updated in the same transaction
        if sms_status_shown(screen, failed) == "sent":
            break
        time.sleep(0.25)
        page.reload()
    assert sms_status_shown(screen, failed) == "sent"
    assert len(gateway_settings.messages) == 2
    screen.shot("04-orders-resent")

    page.click("#logout-form button[type=submit]")
    page.wait_for_url(re.compile(re.escape(provider.issuer) + r"/session/end.*"))
    page.click("button[autofocus]")  # "Yes, sign me out"
    page.wait_for_url(re.compile(re.escape(f"{screen.origin}/admin/login/") + ".*"))
    page.goto(f"{screen.origin}/admin/")
    assert page.url.startswith(f"{screen.origin}/admin/login/")
    screen.shot("05-signed-out")
    screen.assert_clean()


def test_a_person_without_a_role_sees_why(screen: Screen, provider: OidcProvider) -> None:
    page = screen.page
    page.goto(f"{screen.origin}/admin/login/")
    page.click("#oidc-signin")
    sign_in_at_provider(screen, "nora")
    page.wait_for_selector("#signin-refused")
    assert "no back-office role" in page.inner_text("#signin-refused")
    screen.shot("06-refused")
    screen.assert_clean()


def test_staff_rotate_a_client_secret_with_the_built_in_issuer(
    screen: Screen, django_user_model: Any
) -> None:
    django_user_model.objects.create_superuser("boss", "boss@duka.test", "a long password 1")
    client_id, old_secret = create_client(name="till", scopes="orders:read")
    page = screen.page
    page.goto(f"{screen.origin}/admin/login/")
    assert page.locator("#oidc-signin").count() == 0  # the built-in issuer: passwords only
    page.fill("#id_username", "boss")
    page.fill("#id_password", "a long password 1")
    page.click("#login-form input[type=submit]")
    page.wait_for_url(f"{screen.origin}/admin/")

    page.goto(f"{screen.origin}/admin/backoffice/apiclient/")
    page.check("#result_list input[name=_selected_action]")
    page.select_option("select[name=action]", "rotate_secret")
    page.click("button[name=index]")
    page.click("input[type=submit][value^='Yes']")
    assert page.text_content("code.client-id") == client_id
    shown = page.locator(".client-secret")  # a read-only field (or a code cell)
    tag = shown.evaluate("node => node.tagName")
    new_secret = shown.input_value() if tag == "INPUT" else shown.text_content()
    assert new_secret
    assert new_secret != old_secret
    screen.shot("07-client-secret-rotated")

    page.click("#logout-form button[type=submit]")
    page.wait_for_url(re.compile(re.escape(f"{screen.origin}/admin/login/") + ".*"))
    page.goto(f"{screen.origin}/admin/")
    assert page.url.startswith(f"{screen.origin}/admin/login/")
    screen.shot("08-signed-out-password")
    screen.assert_clean()
    assert SCREENSHOTS.is_dir()

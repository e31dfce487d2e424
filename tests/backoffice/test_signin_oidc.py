"""OpenID Connect sign-in to the back-office against the real node-oidc-provider: PKCE in the
authorization request, roles from the claims (dotted paths too), people without a role refused
with a page, RP-initiated logout, and no 5xx for a forged callback or an unreachable issuer."""

from __future__ import annotations

import urllib.parse

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.cache import cache, caches
from django.core.cache.backends.locmem import LocMemCache
from django.test import Client
from django.urls import get_resolver

from backend.integrations import oidc
from tests.fixtures.oidc_provider import OidcProvider, configure, start_oidc_provider

pytestmark = pytest.mark.django_db
CALLBACK = "http://testserver/admin/oidc/callback/"


@pytest.fixture(autouse=True)
def _fresh_limits() -> None:
    # Only the in-process cache: clear() on a Redis cache is FLUSHDB on a shared server.
    if isinstance(caches["default"], LocMemCache):
        cache.clear()
    get_resolver().url_patterns  # noqa: B018  # under the run's settings (tests.fixtures.oidc_provider)


def start(client: Client, next_url: str = "/admin/") -> str:
    response = client.get("/admin/oidc/login/", {"next": next_url})
    assert response.status_code == 302
    return response["Location"]


def sign_in(client: Client, provider: OidcProvider, login: str) -> object:
    back = provider.sign_in(start(client), login, back_to=CALLBACK)
    return client.get(back.removeprefix("http://testserver"))


def test_the_authorization_request_uses_pkce_and_a_nonce(client, provider_issuer) -> None:
    location = start(client)
    endpoint = oidc.discovery().document()["authorization_endpoint"]
    assert location.startswith(endpoint + "?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert query["response_type"] == "code"
    assert query["client_id"] == "duka-api"
    assert query["redirect_uri"] == CALLBACK
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43  # base64url of a SHA-256
    assert query["state"]
    assert query["nonce"]
    assert set(query["scope"].split()) == {"openid", "profile", "email"}


def test_an_operator_signs_in_with_the_operator_role(client, provider_issuer, settings) -> None:
    response = sign_in(client, provider_issuer, "olive")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    user = get_user_model().objects.get(username="oidc:olive")
    assert user.is_staff
    assert not user.has_usable_password()
    assert user.first_name == "Olive Operator"
    assert user.email == "olive@duka.test"
    assert set(user.groups.values_list("name", flat=True)) == {"operator"}
    assert client.get("/admin/").status_code == 200
    # The session ends ADMIN_SESSION_SECONDS after sign-in at the latest.
    assert 0 < client.session.get_expiry_age() <= settings.ADMIN_SESSION_SECONDS


def test_a_viewer_signs_in_with_the_read_only_role(client, provider_issuer) -> None:
    assert sign_in(client, provider_issuer, "victor").status_code == 302
    user = get_user_model().objects.get(username="oidc:victor")
    assert set(user.groups.values_list("name", flat=True)) == {"viewer"}


def test_a_dotted_roles_claim(client, provider_issuer, settings) -> None:
    settings.ADMIN_ROLES_CLAIM = "realm_access.roles"
    assert sign_in(client, provider_issuer, "kim").status_code == 302
    user = get_user_model().objects.get(username="oidc:kim")
    assert set(user.groups.values_list("name", flat=True)) == {"operator"}
    # Olive's groups are not read under this setting: she has no role now.
    refused = sign_in(Client(), provider_issuer, "olive")
    assert refused.status_code == 403


def test_no_role_is_refused_with_a_page_and_takes_old_roles_away(client, provider_issuer) -> None:
    former = get_user_model().objects.create(username="oidc:nora", is_staff=True)
    response = sign_in(client, provider_issuer, "nora")
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "no back-office role" in page
    assert "Nora Nobody" in page
    assert "<code>groups</code>" in page
    assert "duka-operator" in page
    former.refresh_from_db()
    assert not former.is_staff
    assert client.get("/admin/").status_code == 302  # not signed in


def test_nobody_gets_an_account_without_a_role(client, provider_issuer) -> None:
    assert sign_in(client, provider_issuer, "somebody-else").status_code == 403
    assert not get_user_model().objects.filter(username="oidc:somebody-else").exists()


def test_sign_out_ends_the_session_at_the_issuer(client, provider_issuer) -> None:
    assert sign_in(client, provider_issuer, "olive").status_code == 302
    id_token = client.session["backoffice_oidc_id_token"]
    response = client.post("/admin/logout/")
    assert response.status_code == 302
    location = response["Location"]
    end_session = oidc.discovery().document()["end_session_endpoint"]
    assert location.startswith(end_session + "?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
    assert query["id_token_hint"] == id_token
    assert query["post_logout_redirect_uri"] == "http://testserver/admin/login/"
    assert query["client_id"] == "duka-api"
    assert client.get("/admin/").status_code == 302  # signed out here
    # The provider accepts the request (a wrong hint or redirect is an error page there).
    confirm = requests.get(location, timeout=10)
    assert confirm.status_code == 200
    assert "logout" in confirm.text.lower()


def test_sign_out_is_a_post(client, provider_issuer) -> None:
    assert client.get("/admin/logout/").status_code == 405


def test_a_forged_callback_is_refused_and_counted(client, provider_issuer, settings) -> None:
    settings.ADMIN_SIGNIN_FAILURES_PER_ADDRESS = 2
    for _ in range(2):
        response = client.get("/admin/oidc/callback/", {"code": "x", "state": "forged"})
        assert response.status_code == 400
        assert "could not be completed" in response.content.decode()
    limited = client.get("/admin/oidc/callback/", {"code": "x", "state": "forged"})
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) >= 1
    other_address = Client(REMOTE_ADDR="127.0.0.9")
    assert other_address.get("/admin/oidc/callback/", {"state": "s"}).status_code == 400


def test_an_error_answer_from_the_provider_is_a_page(client, provider_issuer) -> None:
    start(client)
    response = client.get("/admin/oidc/callback/", {"error": "access_denied", "state": "whatever"})
    assert response.status_code == 400


def test_an_unreachable_issuer_is_a_503_page(client, settings) -> None:
    settings.OIDC_ISSUER = "http://127.0.0.1:9/"
    settings.OIDC_AUDIENCE = "duka-api"
    settings.OIDC_CLIENT_ID = "duka-api"
    settings.OIDC_CLIENT_SECRET = "duka-api-secret"
    oidc.reset_validator()
    response = client.get("/admin/oidc/login/")
    assert response.status_code == 503
    assert "cannot be reached" in response.content.decode()
    oidc.reset_validator()


def test_the_login_page_offers_the_issuer_only_when_configured(
    client, settings, oidc_provider
) -> None:
    settings.ADMIN_OIDC_NAME = None
    page = client.get("/admin/login/").content.decode()
    assert 'id="oidc-signin"' not in page
    assert client.get("/admin/oidc/login/").status_code == 404
    configure(settings, oidc_provider)
    host = oidc_provider.issuer.removeprefix("http://")
    page = client.get("/admin/login/", {"next": "/admin/x/"}).content.decode()
    assert f"Sign in with {host}" in page
    assert 'href="/admin/oidc/login/?next=/admin/x/"' in page
    settings.ADMIN_OIDC_NAME = "Acme SSO"
    assert "Sign in with Acme SSO" in client.get("/admin/login/").content.decode()
    oidc.reset_validator()


def test_next_never_leaves_the_site(client, provider_issuer) -> None:
    back = provider_issuer.sign_in(
        start(client, "https://evil.example/"), "olive", back_to=CALLBACK
    )
    response = client.get(back.removeprefix("http://testserver"))
    assert response["Location"] == "/admin/"


def test_starting_a_sign_in_from_a_limited_address_is_refused(client, provider_issuer, settings):
    settings.ADMIN_SIGNIN_FAILURES_PER_ADDRESS = 1
    client.get("/admin/oidc/callback/", {"code": "x", "state": "forged"})
    response = client.get("/admin/oidc/login/")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1


def test_a_provider_gone_before_the_callback_is_a_503_page(client, settings) -> None:
    own = start_oidc_provider()
    try:
        configure(settings, own)
        back = own.sign_in(start(client), "olive", back_to=CALLBACK)
    finally:
        own.stop()
    response = client.get(back.removeprefix("http://testserver"))  # the code exchange fails
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "cannot be reached" in response.content.decode()
    assert not get_user_model().objects.filter(username="oidc:olive").exists()
    oidc.reset_validator()


def test_the_callback_without_an_issuer_is_not_found(client) -> None:
    assert client.get("/admin/oidc/callback/", {"code": "x", "state": "y"}).status_code == 404


def test_refused_openid_sign_ins_never_count_against_a_password_account(
    client, provider_issuer, settings
) -> None:
    """The subject `nora` and the password account `nora` are different people."""
    get_user_model().objects.create_superuser("nora", "n@duka.test", "a long password 1")
    settings.ADMIN_SIGNIN_FAILURES_PER_USERNAME = 1
    assert sign_in(client, provider_issuer, "nora").status_code == 403
    response = Client().post(
        "/admin/login/?next=/admin/",
        {"username": "nora", "password": "a long password 1", "next": "/admin/"},
    )
    assert response.status_code == 302

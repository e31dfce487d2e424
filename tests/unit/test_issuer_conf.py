"""Built-in issuer configuration: where the signing key comes from, and the issuer URL rules."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from backend.issuer.conf import (
    check_issuer_url,
    generate_private_key_pem,
    oauth2_provider_settings,
)


def configure(tmp_path, **overrides):
    options = {
        "public_url": "https://duka.example.com",
        "private_key_pem": None,
        "debug": False,
        "dev_key_path": tmp_path / ".oidc_dev_key.pem",
        "external_issuer": None,
    }
    options.update(overrides)
    return oauth2_provider_settings(**options)


def test_non_debug_without_key_is_a_startup_error_naming_the_variable(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="OIDC_RSA_PRIVATE_KEY"):
        configure(tmp_path)
    assert not (tmp_path / ".oidc_dev_key.pem").exists()


def test_debug_without_key_generates_one_and_keeps_it(tmp_path):
    first = configure(tmp_path, debug=True)["OIDC_RSA_PRIVATE_KEY"]
    second = configure(tmp_path, debug=True)["OIDC_RSA_PRIVATE_KEY"]
    assert first == second
    path = tmp_path / ".oidc_dev_key.pem"
    assert path.read_text() == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_an_external_issuer_needs_no_signing_key(tmp_path):
    assert (
        configure(tmp_path, external_issuer="https://idp.example.com/")["OIDC_RSA_PRIVATE_KEY"]
        == ""
    )


def test_a_key_with_escaped_newlines_is_accepted(tmp_path):
    pem = generate_private_key_pem()
    escaped = pem.strip().replace("\n", "\\n")
    assert configure(tmp_path, private_key_pem=escaped)["OIDC_RSA_PRIVATE_KEY"] == pem


@pytest.mark.parametrize(
    "bad", ["not a pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"]
)
def test_a_bad_key_is_a_startup_error(tmp_path, bad):
    with pytest.raises(ImproperlyConfigured, match="OIDC_RSA_PRIVATE_KEY"):
        configure(tmp_path, private_key_pem=bad)


def test_the_issuer_is_pinned_and_nothing_is_granted_by_default(tmp_path):
    provider = configure(tmp_path, private_key_pem=generate_private_key_pem())
    assert provider["OIDC_ISS_ENDPOINT"] == "https://duka.example.com/o"
    assert provider["DEFAULT_SCOPES"] == []
    assert provider["ACCESS_TOKEN_EXPIRE_SECONDS"] == 900
    assert provider["REFRESH_TOKEN_GENERATOR"].endswith("random_token_generator")


@pytest.mark.parametrize(
    "url",
    [
        "https://idp.example.com/",
        "http://127.0.0.1:8080",
        "http://localhost/realms/x",
        "http://[::1]:9000",
    ],
)
def test_issuer_urls_accepted(url):
    check_issuer_url(url, name="OIDC_ISSUER")


@pytest.mark.parametrize(
    "url", ["http://idp.example.com", "ftp://127.0.0.1", "https://", "http://10.0.0.1"]
)
def test_issuer_urls_refused(url):
    with pytest.raises(ImproperlyConfigured, match="OIDC_ISSUER"):
        check_issuer_url(url, name="OIDC_ISSUER")

"""The built-in issuer end to end: createclient -> POST /o/token/ -> the validator and the API."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from django.conf import settings
from django.core import checks
from django.core.management import CommandError, call_command
from django.test import Client

from backend.integrations import oidc

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[3]


def createclient(name: str, scopes: str) -> dict[str, str]:
    out = io.StringIO()
    call_command("createclient", name, "--scopes", scopes, stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines
    credentials = json.loads(lines[0])
    assert set(credentials) == {"client_id", "client_secret"}
    return credentials


def token_with_basic(client: Client, credentials: dict[str, str], scope: str | None) -> dict:
    basic = base64.b64encode(
        f"{credentials['client_id']}:{credentials['client_secret']}".encode()
    ).decode()
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    response = client.post("/o/token/", data, HTTP_AUTHORIZATION=f"Basic {basic}")
    assert response.status_code == 200, response.content
    return response.json()


def test_createclient_then_token_with_basic_auth_then_api_call(client: Client):
    credentials = createclient("reporting", "customers:read orders:read")

    grant = token_with_basic(client, credentials, "customers:read")

    assert grant["token_type"] == "Bearer"
    assert grant["expires_in"] == 900
    assert grant["scope"] == "customers:read"
    assert "refresh_token" not in grant
    principal = oidc.validate(grant["access_token"])
    assert principal.subject == credentials["client_id"]
    assert principal.client_id == credentials["client_id"]
    assert principal.scopes == frozenset({"customers:read"})
    auth = {"HTTP_AUTHORIZATION": f"Bearer {grant['access_token']}"}
    assert client.get("/api/v1/customers/", **auth).status_code == 200
    assert client.get("/api/v1/orders/", **auth).status_code == 403


def test_token_with_form_credentials(client: Client):
    credentials = createclient("shop", "orders:write")
    response = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "orders:write", **credentials},
    )
    assert response.status_code == 200, response.content
    assert oidc.validate(response.json()["access_token"]).scopes == frozenset({"orders:write"})


def test_token_claims_and_header_match_discovery_and_jwks(client: Client):
    credentials = createclient("inspector", "customers:read customers:write")
    token = token_with_basic(client, credentials, "customers:read customers:write")["access_token"]

    discovery = client.get("/o/.well-known/openid-configuration").json()
    jwks = client.get("/o/.well-known/jwks.json").json()
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})

    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    assert discovery["issuer"] == settings.OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"]
    assert discovery["jwks_uri"].endswith("/o/.well-known/jwks.json")
    assert discovery["token_endpoint"].endswith("/o/token/")
    assert claims["iss"] == discovery["issuer"]
    assert claims["aud"] == settings.OIDC_AUDIENCE == "duka"
    assert claims["sub"] == claims["client_id"] == credentials["client_id"]
    assert set(claims["scope"].split()) == {"customers:read", "customers:write"}
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] - claims["iat"] == 900
    assert len(claims["jti"]) >= 16
    # The published JWKS verifies it on its own, as an external resource server would.
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    jwt.decode(token, key, algorithms=["RS256"], audience="duka", issuer=discovery["issuer"])


def test_a_request_without_scope_gets_no_api_scope(client: Client):
    credentials = createclient("minimal", "customers:read orders:read")
    grant = token_with_basic(client, credentials, None)
    assert grant.get("scope", "") == ""
    assert oidc.validate(grant["access_token"]).scopes == frozenset()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {grant['access_token']}"}
    assert client.get("/api/v1/customers/", **auth).status_code == 403


def test_a_client_cannot_obtain_scopes_it_was_not_given(client: Client):
    credentials = createclient("reader", "customers:read")
    basic = base64.b64encode(
        f"{credentials['client_id']}:{credentials['client_secret']}".encode()
    ).decode()
    response = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "customers:read customers:write"},
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_a_wrong_secret_is_refused(client: Client):
    credentials = createclient("victim", "customers:read")
    response = client.post(
        "/o/token/",
        {
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": "not-the-secret",
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "fields",
    [
        {"grant_type": "password", "username": "u", "password": "p"},
        # Was a 500 with a traceback (issue 24): the toolkit's device flow without a code.
        {"grant_type": "urn:ietf:params:oauth:grant-type:device_code"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": "x"},
        {"grant_type": "authorization_code", "code": "x", "redirect_uri": "https://a.example/"},
        {"grant_type": "refresh_token", "refresh_token": "x"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "x"},
        {"grant_type": "Client_Credentials"},
    ],
)
def test_other_grants_are_unsupported_before_the_toolkit_runs(client: Client, fields, monkeypatch):
    credentials = createclient("no-passwords", "customers:read")

    def never(*args, **kwargs):
        raise AssertionError("the toolkit must not run for another grant type")

    monkeypatch.setattr("oauth2_provider.views.base.TokenView.create_token_response", never)
    monkeypatch.setattr("django.contrib.auth.authenticate", never)
    response = client.post("/o/token/", {**fields, **credentials})
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    "fields",
    [{}, {"grant_type": ["client_credentials", "client_credentials"]}, {"grant_type": ""}],
)
def test_a_missing_or_repeated_grant_type_is_invalid_request(client: Client, fields):
    response = client.post("/o/token/", fields)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data"])
def test_a_body_that_is_not_a_form_is_a_400(client: Client, content_type: str):
    response = client.post(
        "/o/token/", b'{"grant_type": "client_credentials"}', content_type=content_type
    )
    assert response.status_code == 400


def test_basic_and_body_credentials_together_are_invalid_request(client: Client):
    # Issue 24: a decoy id in Basic with the victim's id and secret in the body was counted
    # against the decoy while the toolkit authenticated the body.
    victim = createclient("victim", "customers:read")
    decoy = base64.b64encode(b"decoy:nothing").decode()
    response = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "customers:read", **victim},
        HTTP_AUTHORIZATION=f"Basic {decoy}",
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_request"
    basic = base64.b64encode(f"{victim['client_id']}:{victim['client_secret']}".encode()).decode()
    for scheme in ("Basic", "basic", "BASIC"):
        response = client.post(
            "/o/token/",
            {"grant_type": "client_credentials", "client_secret": victim["client_secret"]},
            HTTP_AUTHORIZATION=f"{scheme} {basic}",
        )
        assert response.status_code == 400, (scheme, response.content)
    # The same id repeated in the body, without a secret, is one set of credentials.
    response = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "client_id": victim["client_id"]},
        HTTP_AUTHORIZATION=f"basic {basic}",
    )
    assert response.status_code == 200, response.content


def test_the_secret_is_stored_hashed():
    from oauth2_provider.models import Application

    credentials = createclient("hashed", "orders:read")
    stored = Application.objects.get(client_id=credentials["client_id"]).client_secret
    assert stored != credentials["client_secret"]
    assert credentials["client_secret"] not in stored


def test_secrets_are_stored_with_a_fast_salted_hash(client: Client, monkeypatch):
    # "Check the secret first" means every failure costs one check: with PBKDF2 that was
    # 0.25-0.45 s of CPU per made-up secret (issue 24). A 128-character random secret needs no
    # stretching, so a salted SHA-256 keeps a flood of failures as cheap as a 404.
    from django.contrib.auth import hashers
    from oauth2_provider.models import Application

    credentials = createclient("fast", "orders:read")
    stored = Application.objects.get(client_id=credentials["client_id"]).client_secret
    assert stored.startswith("duka_secret_sha256$")

    def slow(*args, **kwargs):
        raise AssertionError("no key-stretching hasher may run for a client secret")

    for name in ("PBKDF2PasswordHasher", "MD5PasswordHasher"):
        monkeypatch.setattr(getattr(hashers, name), "verify", slow)
    assert token_with_basic(client, credentials, "orders:read")["scope"] == "orders:read"
    wrong = {**credentials, "client_secret": "guess"}
    response = client.post("/o/token/", {"grant_type": "client_credentials", **wrong})
    assert response.status_code == 401


def test_a_secret_stored_with_another_hasher_is_rehashed_on_its_first_success(client: Client):
    from django.contrib.auth.hashers import make_password
    from oauth2_provider.models import Application

    credentials = createclient("legacy", "orders:read")
    application = Application.objects.get(client_id=credentials["client_id"])
    # As `createclient` stored it before: the default (here MD5, in production PBKDF2).
    Application.objects.filter(pk=application.pk).update(
        client_secret=make_password(credentials["client_secret"], hasher="md5")
    )
    wrong = {**credentials, "client_secret": "guess"}
    assert (
        client.post("/o/token/", {"grant_type": "client_credentials", **wrong}).status_code == 401
    )
    assert Application.objects.get(pk=application.pk).client_secret.startswith("md5$")

    token_with_basic(client, credentials, "orders:read")
    assert Application.objects.get(pk=application.pk).client_secret.startswith(
        "duka_secret_sha256$"
    )
    assert token_with_basic(client, credentials, "orders:read")["scope"] == "orders:read"


@pytest.mark.parametrize("scopes", ["customers:read admin", "", "orders:*"])
def test_createclient_refuses_unknown_or_no_scopes(scopes: str):
    from oauth2_provider.models import Application

    with pytest.raises(CommandError, match="scope"):
        call_command("createclient", "bad", "--scopes", scopes, stdout=io.StringIO())
    assert not Application.objects.exists()


def test_createclient_accepts_commas_and_duplicates():
    from backend.issuer.models import ClientScopes

    credentials = createclient("commas", "orders:read,orders:read, customers:read")
    registered = ClientScopes.objects.get(application__client_id=credentials["client_id"])
    assert registered.as_list() == ["orders:read", "customers:read"]


def test_only_client_credentials_endpoints_are_routed(client: Client):
    assert client.get("/o/applications/").status_code == 404
    assert client.get("/o/authorized_tokens/").status_code == 404
    assert client.get("/o/authorize/?response_type=code&client_id=x").status_code == 400
    assert client.get("/o/.well-known/oauth-authorization-server").status_code == 200
    assert client.post("/o/token/", {"grant_type": "client_credentials"}).status_code == 401


def test_check_deploy_shows_no_oauth_toolkit_warnings():
    messages = checks.run_checks(include_deployment_checks=True)
    ours = [m for m in messages if m.id and m.id.startswith("oauth2_provider.")]
    assert ours == []


def test_non_debug_start_without_a_signing_key_names_the_variable(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"OIDC_RSA_PRIVATE_KEY", "OIDC_ISSUER", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="x" * 50,
        DJANGO_SETTINGS_MODULE="backend.settings.base",
        DATABASE_URL="postgres://duka@127.0.0.1:1/unused",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "OIDC_RSA_PRIVATE_KEY" in result.stderr

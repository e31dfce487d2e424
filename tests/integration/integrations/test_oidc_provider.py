"""The API against a real OpenID-certified provider (node-oidc-provider on 127.0.0.1).

Client-credentials tokens in both formats: RFC 9068 JWTs (the client names the API as its
resource) verified with the provider's JWKS, and opaque tokens validated by RFC 7662
introspection at the provider's `introspection_endpoint`, authenticated as `duka-api`.
"""

from __future__ import annotations

import pytest
from django.test import Client

from backend.integrations import oidc
from tests.fixtures.oidc_provider import OidcProvider, configure, start_oidc_provider

pytestmark = pytest.mark.django_db

READ = "/api/v1/customers/"
ORDERS = "/api/v1/orders/"
INVALID = 'Bearer error="invalid_token"'


def get(client: Client, token: str, path: str = READ):
    return client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_jwt_access_token_is_verified_with_the_provider_keys(client, provider_issuer):
    token = provider_issuer.token("jwt-client", "customers:read", jwt=True)
    assert token.count(".") == 2

    assert get(client, token).status_code == 200
    principal = oidc.validate(token)
    assert principal.subject == "jwt-client"
    assert principal.client_id == "jwt-client"
    assert principal.scopes == frozenset({"customers:read"})
    assert oidc.get_validator().introspector.calls == 0


def test_an_opaque_token_is_introspected_once_and_its_client_is_the_subject(
    client, provider_issuer
):
    token = provider_issuer.token("opaque-client", "customers:read orders:read")
    assert token.count(".") == 0

    for _ in range(3):
        assert get(client, token).status_code == 200
    assert get(client, token, ORDERS).status_code == 200

    principal = oidc.validate(token)
    assert principal.subject == "opaque-client"  # the answer has no `sub`: its client_id
    assert principal.scopes == frozenset({"customers:read", "orders:read"})
    assert oidc.get_validator().introspector.calls == 1  # the rest came from the cache


def test_an_opaque_token_without_the_scope_is_403(client, provider_issuer):
    token = provider_issuer.token("opaque-client", "orders:read")
    response = get(client, token)
    assert response.status_code == 403
    assert (
        response["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="customers:read"'
    )


def test_a_revoked_opaque_token_is_401(client, provider_issuer):
    token = provider_issuer.token("opaque-client", "customers:read")
    provider_issuer.revoke(token, "opaque-client")
    response = get(client, token)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == INVALID
    assert "not active" in response.json()["detail"]


def test_an_unknown_opaque_token_is_401_and_asked_about_once(client, provider_issuer):
    for _ in range(3):
        response = get(client, "made-up-opaque-token-0123456789")
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == INVALID
    assert oidc.get_validator().introspector.calls == 1


def test_wrong_introspection_credentials_are_a_401_not_the_issuer_down(
    client, oidc_provider, settings, caplog
):
    # Contract section 3: only 5xx, timeouts and 429 mean the issuer is down; the log says why.
    configure(settings, oidc_provider, OIDC_CLIENT_SECRET="not-the-secret")
    token = oidc_provider.token("opaque-client", "customers:read")
    response = get(client, token)
    assert response.status_code == 401
    assert "OIDC_CLIENT_SECRET" in caplog.text


def test_an_opaque_token_for_another_api_of_the_issuer_is_401(client, provider_issuer):
    # No resource named: the provider's introspection answer carries no `aud` for us.
    token = provider_issuer.token("opaque-client", "customers:read", resource=None)
    assert get(client, token).status_code == 401


def test_without_introspection_credentials_an_opaque_token_is_401(client, oidc_provider, settings):
    configure(settings, oidc_provider, OIDC_CLIENT_ID=None, OIDC_CLIENT_SECRET=None)
    token = oidc_provider.token("opaque-client", "customers:read")
    assert get(client, token).status_code == 401
    jwt_token = oidc_provider.token("jwt-client", "customers:read", jwt=True)
    assert get(client, jwt_token).status_code == 200


@pytest.mark.parametrize("as_jwt", [True, False], ids=["jwt", "opaque"])
def test_scopes_from_keycloak_realm_roles_need_oidc_scope_claims(
    client, oidc_provider, settings, as_jwt
):
    # roles-client's tokens carry the API scopes only in realm_access.roles.
    token = oidc_provider.token("roles-client", "openid", jwt=as_jwt)

    configure(settings, oidc_provider)
    assert get(client, token).status_code == 403

    configure(settings, oidc_provider, OIDC_SCOPE_CLAIMS=["scope", "realm_access.roles"])
    assert get(client, token).status_code == 200
    assert get(client, token, ORDERS).status_code == 200
    response = client.post(
        READ, "{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 403  # the roles grant reads only


def test_provider_down_keeps_cached_tokens_and_answers_503_for_new_ones(client, settings):
    provider: OidcProvider = start_oidc_provider()
    try:
        configure(settings, provider)
        known = provider.token("opaque-client", "customers:read")
        unknown = provider.token("opaque-client", "customers:read")
        signed = provider.token("jwt-client", "customers:read", jwt=True)
        assert get(client, known).status_code == 200
        assert get(client, signed).status_code == 200
    finally:
        provider.stop()

    assert get(client, known).status_code == 200  # cached answer
    assert get(client, signed).status_code == 200  # cached keys
    response = get(client, unknown)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert 1 <= int(response["Retry-After"]) <= 5
    calls = oidc.get_validator().introspector.calls
    assert get(client, unknown).status_code == 503  # inside the backoff: not asked again
    assert oidc.get_validator().introspector.calls == calls
    oidc.reset_validator()

"""An OpenID Connect ID token is never an access token (contract section 3).

A relying party of the same issuer holds its users' ID tokens; if ours accepted them, any such
party could call the API as those users. The claims only ID tokens carry (`nonce`, `at_hash`,
`c_hash`) make it a 401 invalid_token, whatever its audience and scopes.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests.fixtures.auth import bearer, builtin_token

pytestmark = pytest.mark.django_db

READ = "/api/v1/customers/"
ID_TOKEN_CLAIMS = {
    "nonce": "n-0S6_WzA2Mj",
    "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
    "c_hash": "LDktKdoQak3Pk0cnXxCltA",
}


def assert_invalid_id_token(response) -> None:
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert response["Content-Type"] == "application/problem+json"
    assert "ID token" in response.json()["detail"]


@pytest.mark.parametrize(("claim", "value"), list(ID_TOKEN_CLAIMS.items()))
def test_builtin_issuer_token_with_an_id_token_claim_is_401(
    client: Client, auth_headers, claim, value
):
    token = builtin_token("customers:read", **{claim: value})
    assert_invalid_id_token(client.get(READ, **bearer(token)))
    assert client.get(READ, **bearer(builtin_token("customers:read"))).status_code == 200


@pytest.mark.parametrize(("claim", "value"), list(ID_TOKEN_CLAIMS.items()))
def test_external_issuer_id_token_is_401_whatever_its_audience(
    client: Client, external_issuer, claim, value
):
    # The audience is ours (OIDC_AUDIENCE = OIDC_CLIENT_ID is common) and the scope is right.
    token = external_issuer.mint("customers:read", **{claim: value})
    assert_invalid_id_token(client.get(READ, **bearer(token)))


def test_an_id_token_is_not_remembered_as_accepted(client: Client, external_issuer):
    token = external_issuer.mint("customers:read", nonce="abc")
    for _ in range(2):
        assert_invalid_id_token(client.get(READ, **bearer(token)))

"""Authentication and scope answers of the API (contract section 3), through the real stack."""

from __future__ import annotations

import pytest
from django.test import Client

from backend.integrations import oidc
from tests.fixtures.auth import bearer, builtin_token, hostile_tokens, new_key

pytestmark = pytest.mark.django_db

READ = "/api/v1/customers/"
INVALID = 'Bearer error="invalid_token"'


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


def test_a_valid_token_with_the_scope_is_accepted(client: Client, auth_headers):
    response = client.get(READ, **auth_headers("customers:read"))
    assert response.status_code == 200, response.content


def test_no_header_is_401_with_a_bare_challenge(client: Client):
    response = client.get(READ)
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == "Bearer"


def test_an_empty_header_counts_as_absent(client: Client):
    response = client.get(READ, HTTP_AUTHORIZATION="")
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "bearer ",
        "Bearer    ",
        "Token abc.def.ghi",
        "Bearer two words",
        "Bearer\tabc",
        "Digest username=x",
    ],
)
def test_unusable_headers_are_invalid_token(client: Client, header: str):
    response = client.get(READ, HTTP_AUTHORIZATION=header)
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == INVALID


def test_the_scheme_is_case_insensitive(client: Client):
    response = client.get(READ, HTTP_AUTHORIZATION=f"bEaReR {builtin_token('customers:read')}")
    assert response.status_code == 200, response.content


def test_missing_scope_is_403_naming_the_scope(client: Client, auth_headers):
    response = client.get(READ, **auth_headers("orders:read", "customers:write"))
    body = assert_problem(response, 403)
    assert response["WWW-Authenticate"] == (
        'Bearer error="insufficient_scope", scope="customers:read"'
    )
    assert "customers:read" in body["detail"]


def test_write_scope_does_not_imply_read(client: Client, auth_headers):
    assert client.get("/api/v1/orders/", **auth_headers("orders:write")).status_code == 403


@pytest.mark.parametrize(
    "claims",
    [
        {"scope": "orders:read customers:read"},
        {"scope": None, "scp": ["customers:read"]},
        {"scope": None, "scp": "profile customers:read"},
        {"scope": None, "permissions": ["customers:read"]},
        {"scope": "openid", "permissions": ["customers:read", 7]},
    ],
)
def test_scopes_come_from_scope_scp_or_permissions(client: Client, claims):
    token = builtin_token(**claims)
    assert client.get(READ, **bearer(token)).status_code == 200


@pytest.mark.parametrize(
    "claims",
    [
        {"scope": ["customers:read"]},  # a list where the contract says string: still honoured
        {"scope": None, "scp": {"customers:read": True}},  # odd types are ignored, not a 500
        {"scope": None, "permissions": "customers:read"},
    ],
)
def test_odd_scope_claim_shapes_never_fail_the_request(client: Client, claims):
    response = client.get(READ, **bearer(builtin_token(**claims)))
    assert response.status_code in (200, 403)


def test_a_token_signed_by_another_key_with_the_builtin_kid_is_refused(client: Client):
    from django.conf import settings
    from oauth2_provider.utils import jwk_from_pem

    kid = jwk_from_pem(settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"]).thumbprint()
    import jwt

    from tests.fixtures.auth import claims_for

    claims = claims_for(
        issuer=settings.OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"],
        audience=settings.OIDC_AUDIENCE,
        scopes=("customers:read",),
        sub="mallory",
    )
    forged = jwt.encode(claims, new_key().private_key, "RS256", {"kid": kid})
    response = client.get(READ, **bearer(forged))
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == INVALID


# --- Against an external (loopback) issuer ----------------------------------------------------


def test_hostile_tokens_are_each_401_never_5xx(client: Client, external_issuer):
    assert client.get(READ, **external_issuer.headers("customers:read")).status_code == 200
    for name, token in hostile_tokens(external_issuer).items():
        response = client.get(READ, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 401, (name, response.status_code, response.content)
        assert response["WWW-Authenticate"] == INVALID, name
        assert response["Content-Type"] == "application/problem+json", name


def test_builtin_tokens_are_refused_when_an_external_issuer_is_configured(
    client: Client, external_issuer, auth_headers
):
    token = builtin_token("customers:read")
    oidc.reset_validator()
    response = client.get(READ, **bearer(token))
    assert response.status_code == 401


def test_rotated_key_is_accepted_through_the_api(client: Client, external_issuer):
    assert client.get(READ, **external_issuer.headers("customers:read")).status_code == 200
    # Age the cache past the cooldown instead of sleeping 30 s.
    oidc.get_validator().keys._attempted_at -= oidc.REFRESH_COOLDOWN_SECONDS
    new = external_issuer.rotate()
    token = external_issuer.mint("customers:read", key=new)
    assert client.get(READ, **bearer(token)).status_code == 200
    assert external_issuer.jwks_fetches == 2


def test_unknown_kids_do_not_hammer_the_issuer(client: Client, external_issuer):
    client.get(READ, **external_issuer.headers("customers:read"))
    forged = new_key()
    for i in range(100):
        key = type(forged)(kid=f"forged-{i}", private_key=forged.private_key, alg="RS256")
        token = external_issuer.mint("customers:read", key=key)
        assert client.get(READ, **bearer(token)).status_code == 401
    assert external_issuer.jwks_fetches <= 2


def test_issuer_down_after_warm_up_still_accepts_tokens(client: Client, external_issuer):
    headers = external_issuer.headers("customers:read")
    assert client.get(READ, **headers).status_code == 200
    external_issuer.down()
    oidc.get_validator().keys._fetched_at -= 3600  # stale: a refresh is attempted and fails
    for _ in range(3):
        assert client.get(READ, **headers).status_code == 200


def test_issuer_never_reached_is_503_with_retry_after(client: Client, external_issuer):
    headers = external_issuer.headers("customers:read")
    external_issuer.down()
    response = client.get(READ, **headers)
    assert_problem(response, 503)
    assert 1 <= int(response["Retry-After"]) <= 5
    # Garbage that never reaches the key lookup is still a plain 401.
    assert client.get(READ, HTTP_AUTHORIZATION="Bearer nope").status_code == 401


def test_request_auth_is_the_principal(rf, external_issuer):
    from backend.api.auth import require

    request = rf.get(READ, **external_issuer.headers("customers:read", sub="alice"))
    principal = require("customers:read")(request)
    assert principal.subject == "alice"
    assert principal.client_id == "test-client"
    assert principal.scopes == frozenset({"customers:read"})
    assert str(principal) == "alice"


def test_unknown_scope_names_are_a_programming_error():
    from backend.api.auth import require

    with pytest.raises(ValueError, match="unknown scope"):
        require("customer:read")


# --- Public endpoints and the OpenAPI document -----------------------------------------------


def test_docs_and_schema_need_no_token(client: Client):
    assert client.get("/api/v1/docs").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_openapi_declares_the_builtin_client_credentials_flow(client: Client):
    schema = client.get("/api/v1/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert list(schemes) == ["ScopedBearer"]
    scheme = schemes["ScopedBearer"]
    assert scheme["type"] == "oauth2"
    assert "scheme" not in scheme
    flow = scheme["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/o/token/"
    assert set(flow["scopes"]) == {
        "customers:read",
        "customers:write",
        "orders:read",
        "orders:write",
        "webhooks:manage",
    }
    operation = schema["paths"]["/api/v1/customers/"]["get"]
    assert operation["security"] == [{"ScopedBearer": ["customers:read"]}]


def test_openapi_points_at_an_external_issuer(settings):
    from backend.api.auth import ScopedBearer

    settings.OIDC_ISSUER = "https://login.example.com/tenant/"
    scheme = ScopedBearer("orders:read").openapi_security_schema
    assert scheme == {
        "type": "openIdConnect",
        "openIdConnectUrl": "https://login.example.com/tenant/.well-known/openid-configuration",
    }


# --- RFC 9068 `typ` (OIDC_REQUIRE_TYP) ----------------------------------------------------------


def builtin_token_with_header(**header: object) -> str:
    import jwt
    from django.conf import settings
    from oauth2_provider.utils import jwk_from_pem

    from tests.fixtures.auth import claims_for

    pem = settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"]
    claims = claims_for(
        issuer=settings.OAUTH2_PROVIDER["OIDC_ISS_ENDPOINT"],
        audience=settings.OIDC_AUDIENCE,
        scopes=("customers:read",),
        sub="typ-tester",
    )
    headers = {"kid": jwk_from_pem(pem).thumbprint(), **header}
    return jwt.encode(claims, pem, algorithm="RS256", headers=headers)


@pytest.mark.parametrize("typ", ["id+jwt", "JWT", "application/jwt", "", None, 7])
def test_with_the_builtin_issuer_a_token_must_be_typed_at_jwt(client: Client, typ):
    # Issue 24: an `id+jwt` was accepted. Unset OIDC_REQUIRE_TYP means on with the built-in one.
    token = builtin_token_with_header(typ=typ)
    response = client.get(READ, **bearer(token))
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == INVALID
    assert "typ" in response.json()["detail"]


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_at_jwt_is_compared_case_insensitively_with_or_without_the_media_prefix(
    client: Client, typ
):
    response = client.get(READ, **bearer(builtin_token_with_header(typ=typ)))
    assert response.status_code == 200, response.content


def test_oidc_require_typ_off_accepts_an_untyped_builtin_token(client: Client, settings):
    settings.OIDC_REQUIRE_TYP = False
    token = builtin_token_with_header()
    response = client.get(READ, **bearer(token))
    assert response.status_code == 200, response.content


def test_with_an_external_issuer_typ_is_optional_unless_required(
    client: Client, external_issuer, settings
):
    untyped = external_issuer.mint("customers:read")
    assert client.get(READ, **bearer(untyped)).status_code == 200
    settings.OIDC_REQUIRE_TYP = True
    assert client.get(READ, **bearer(untyped)).status_code == 401
    typed = external_issuer.mint("customers:read", headers={"typ": "at+jwt"})
    assert client.get(READ, **bearer(typed)).status_code == 200


def test_a_flood_of_unknown_opaque_tokens_from_one_address_is_429_for_it_alone(
    client: Client, external_issuer, settings, monkeypatch
):
    # Issue 24: random opaque tokens made valid fresh ones fail. Misses are limited per address.
    import time

    from backend.integrations import oidc_introspection

    # The default shape (burst 20), refilled so slowly that a slow run cannot earn another call.
    slow = oidc_introspection.MissBudget(per_second=0.001, burst=20)
    monkeypatch.setattr(oidc_introspection, "CALLER_MISS_BUDGET", slow)
    settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET = external_issuer.introspection_client
    external_issuer.introspection = {
        "valid-opaque": {
            "active": True,
            "iss": external_issuer.url,
            "aud": external_issuer.audience,
            "client_id": "reporting",
            "scope": "customers:read",
            "exp": int(time.time()) + 300,
        }
    }
    oidc.reset_validator()
    statuses = [
        client.get(READ, HTTP_AUTHORIZATION=f"Bearer random-{i}", REMOTE_ADDR="10.6.6.6")
        for i in range(25)
    ]
    assert {response.status_code for response in statuses[:20]} == {401}
    assert {response.status_code for response in statuses[20:]} == {429}
    limited = statuses[-1]
    assert_problem(limited, 429)
    assert int(limited["Retry-After"]) >= 1
    assert external_issuer.introspection_calls == 20
    fresh = client.get(READ, HTTP_AUTHORIZATION="Bearer valid-opaque", REMOTE_ADDR="10.0.0.2")
    assert fresh.status_code == 200, fresh.content

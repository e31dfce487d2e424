"""Scope and client-id extraction from token claims (no I/O)."""

from __future__ import annotations

import pytest

from backend.integrations.oidc_claims import Principal, scopes_from_claims
from backend.integrations.oidc_claims import client_id_from as _client_id


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"scope": "customers:read  orders:write"}, {"customers:read", "orders:write"}),
        ({"scp": ["orders:read"]}, {"orders:read"}),
        ({"scp": "orders:read customers:read"}, {"orders:read", "customers:read"}),
        ({"permissions": ["orders:write"]}, {"orders:write"}),
        (
            {"scope": "openid", "scp": ["a"], "permissions": ["b"]},
            {"openid", "a", "b"},
        ),
        ({"scope": 42, "scp": {"x": 1}, "permissions": [1, None, "ok"]}, {"ok"}),
        ({"permissions": "orders:read"}, {"orders:read"}),
        ({}, set()),
    ],
)
def test_scopes_from_claims(claims, expected):
    assert scopes_from_claims(claims) == frozenset(expected)


def test_roles_are_not_scopes():
    assert scopes_from_claims({"roles": ["customers:read"]}) == frozenset()


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"client_id": "c", "azp": "a"}, "c"),
        ({"azp": "a", "appid": "b"}, "a"),
        ({"appid": "b"}, "b"),
        ({"client_id": 5}, None),
        ({}, None),
    ],
)
def test_client_id(claims, expected):
    assert _client_id(claims) == expected


def test_principal_is_hashable_and_prints_its_subject():
    principal = Principal(subject="alice", client_id=None, scopes=frozenset({"orders:read"}))
    assert str(principal) == "alice"
    assert hash(principal) == hash(
        Principal(subject="alice", client_id=None, scopes=frozenset({"orders:read"}))
    )


KEYCLOAK = {
    "scope": "profile email",
    "realm_access": {"roles": ["customers:read", "offline_access"]},
    "resource_access": {"duka": {"roles": ["orders:write"]}},
}


@pytest.mark.parametrize(
    ("paths", "claims", "expected"),
    [
        (["realm_access.roles"], KEYCLOAK, {"customers:read", "offline_access"}),
        (
            ["scope", "realm_access.roles"],
            KEYCLOAK,
            {"profile", "email", "customers:read", "offline_access"},
        ),
        (["resource_access.duka.roles"], KEYCLOAK, {"orders:write"}),
        (["roles"], {"roles": ["orders:read"], "scp": "x"}, {"orders:read"}),  # Azure app roles
        (["realm_access.roles"], {"realm_access": "not an object"}, set()),
        (["realm_access.roles.deeper"], KEYCLOAK, set()),
        (["missing.path"], KEYCLOAK, set()),
        # Auth0 namespaced claims are URLs with dots: the literal name wins over a dotted walk.
        (
            ["https://duka.example/roles"],
            {"https://duka.example/roles": ["orders:read"]},
            {"orders:read"},
        ),
    ],
)
def test_scopes_from_dotted_claim_paths(paths, claims, expected):
    assert scopes_from_claims(claims, paths) == frozenset(expected)

"""Scope and client-id extraction from token claims (no I/O)."""

from __future__ import annotations

import pytest

from backend.integrations.oidc import Principal, _client_id, scopes_from_claims


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

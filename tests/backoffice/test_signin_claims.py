"""Which back-office roles a person's claims grant (ADMIN_ROLES_CLAIM and the value lists)."""

from __future__ import annotations

import pytest

from backend.backoffice.roles import OPERATOR, VIEWER
from backend.backoffice.signin.claims import (
    configured_roles,
    roles_from_claims,
    roles_source,
    username_for,
)

VALUES = {"viewer_values": ["duka-viewer"], "operator_values": ["duka-operator", "ops"]}


@pytest.mark.parametrize(
    ("claims", "claim", "expected"),
    [
        ({"groups": ["staff", "duka-viewer"]}, "groups", {VIEWER}),
        ({"groups": ["duka-viewer", "ops"]}, "groups", {VIEWER, OPERATOR}),
        ({"groups": "staff duka-operator"}, "groups", {OPERATOR}),  # space-separated string
        ({"realm_access": {"roles": ["ops"]}}, "realm_access.roles", {OPERATOR}),
        ({"a": {"b": {"c": ["duka-viewer"]}}}, "a.b.c", {VIEWER}),
        # Auth0 namespaced claims are URLs with dots: the literal name wins over the walk.
        ({"https://duka.test/roles": ["ops"]}, "https://duka.test/roles", {OPERATOR}),
        ({"groups": ["staff"]}, "groups", set()),
        ({"groups": ["Duka-Operator"]}, "groups", set()),  # values match exactly
        ({}, "groups", set()),
        ({"groups": {"duka-operator": True}}, "groups", set()),  # not a list or string
        ({"groups": [1, None, "duka-viewer"]}, "groups", {VIEWER}),
        ({"realm_access": ["duka-viewer"]}, "realm_access.roles", set()),
    ],
)
def test_roles_from_claims(claims: dict, claim: str, expected: set[str]) -> None:
    assert roles_from_claims(claims, claim=claim, **VALUES) == expected


def test_settings_name_the_claim_and_values(settings) -> None:
    settings.ADMIN_ROLES_CLAIM = "roles"
    settings.ADMIN_VIEWER_ROLES = ["read"]
    settings.ADMIN_OPERATOR_ROLES = ["write"]
    assert configured_roles({"roles": ["read"], "groups": ["duka-operator"]}) == {VIEWER}
    settings.ADMIN_ROLES_CLAIM = "groups"
    assert configured_roles({"roles": ["read"], "groups": ["duka-operator"]}) == set()


def test_roles_come_from_the_id_token_when_it_carries_the_claim(settings) -> None:
    settings.ADMIN_ROLES_CLAIM = "realm_access.roles"
    id_token = {"sub": "a", "realm_access": {"roles": []}}
    userinfo = {"sub": "a", "realm_access": {"roles": ["duka-operator"]}}
    assert roles_source(id_token, userinfo) is id_token
    assert roles_source({"sub": "a"}, userinfo) is userinfo
    assert roles_source({"sub": "a"}, None) == {"sub": "a"}


def test_usernames_of_subjects_never_meet_password_accounts() -> None:
    assert username_for("admin") == "oidc:admin"
    long = username_for("x" * 300)
    assert long.startswith("oidc:sha256:")
    assert len(long) <= 150
    assert long != username_for("x" * 301)

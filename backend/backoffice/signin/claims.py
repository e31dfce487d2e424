"""What a signed-in person's claims grant: back-office roles from the claim ADMIN_ROLES_CLAIM.

The claim's values are matched against ADMIN_VIEWER_ROLES and ADMIN_OPERATOR_ROLES (by default
`duka-viewer` and `duka-operator`): an identity provider's groups are shared by every application
of the organisation, so the defaults name this one, and the lists let an operator map groups
that already exist (or an Azure group's object id) without renaming them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings

from backend.backoffice.roles import OPERATOR, VIEWER
from backend.integrations.oidc_claims import claim_at, scopes_from_claims

# Django's username column holds 150 characters; a longer subject is stored hashed.
_USERNAME_PREFIX = "oidc:"
_USERNAME_MAX = 150


def roles_from_claims(
    claims: Mapping[str, Any],
    *,
    claim: str,
    viewer_values: Iterable[str],
    operator_values: Iterable[str],
) -> frozenset[str]:
    """The roles granted by the values of `claim` (a dotted path; a list of strings or a
    space-separated string, the same shapes as scope claims). Unknown values grant nothing."""
    values = scopes_from_claims(claims, (claim,))
    roles = set()
    if values & set(viewer_values):
        roles.add(VIEWER)
    if values & set(operator_values):
        roles.add(OPERATOR)
    return frozenset(roles)


def configured_roles(claims: Mapping[str, Any]) -> frozenset[str]:
    return roles_from_claims(
        claims,
        claim=settings.ADMIN_ROLES_CLAIM,
        viewer_values=settings.ADMIN_VIEWER_ROLES,
        operator_values=settings.ADMIN_OPERATOR_ROLES,
    )


def roles_source(
    id_claims: Mapping[str, Any], userinfo: Mapping[str, Any] | None
) -> Mapping[str, Any]:
    """The claims the roles are read from: the ID token's when it carries the roles claim, else
    the userinfo answer's (providers often keep groups out of the ID token)."""
    if claim_at(id_claims, settings.ADMIN_ROLES_CLAIM) is not None or userinfo is None:
        return id_claims
    return userinfo


def needs_userinfo(id_claims: Mapping[str, Any]) -> bool:
    return claim_at(id_claims, settings.ADMIN_ROLES_CLAIM) is None


def username_for(subject: str) -> str:
    """The Django username of an OpenID subject. Prefixed, so that no identity provider account
    can ever be taken for a password account of the same name (`admin`)."""
    username = _USERNAME_PREFIX + subject
    if len(username) <= _USERNAME_MAX:
        return username
    return _USERNAME_PREFIX + "sha256:" + hashlib.sha256(subject.encode()).hexdigest()

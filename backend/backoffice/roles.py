"""The back-office's two roles, realised as Django groups of the same names. Sign-in maps the
roles claim (ADMIN_ROLES_CLAIM) onto them with `apply_roles`; superusers (createsuperuser) hold
every permission without a role.

The groups and their permissions are made equal to `ROLE_PERMISSIONS` after every `migrate`
(post_migrate, where Django makes the permissions themselves): so a release that changes a role
needs no data migration, and a database flushed between tests gets them back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractUser, Group, Permission
from django.db import DEFAULT_DB_ALIAS, transaction

VIEWER = "viewer"  # sees every screen and the audit log; changes nothing, runs no action
OPERATOR = "operator"  # also edits customers and runs the actions (resend, enable, rotate, ...)
ROLES = (VIEWER, OPERATOR)

_SCREENS = ("order", "customer", "webhookendpoint", "apiclient", "auditentry")
# role -> (app label, permission codename): a viewer may view every screen and the audit log;
# an operator may also `change` (what the actions need) and `add`/`delete` where a screen has them.
ROLE_PERMISSIONS: dict[str, set[tuple[str, str]]] = {
    VIEWER: {("backoffice", f"view_{m}") for m in _SCREENS},
}
ROLE_PERMISSIONS[OPERATOR] = ROLE_PERMISSIONS[VIEWER] | {
    ("backoffice", codename)
    for codename in (
        "change_order",
        "add_customer",
        "change_customer",
        "delete_customer",
        "change_webhookendpoint",
        "add_apiclient",
        "change_apiclient",
        "delete_apiclient",
    )
}


def sync_role_groups(using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """post_migrate receiver: each role's group exists and holds exactly its permissions."""
    for role, wanted in ROLE_PERMISSIONS.items():
        permissions = [
            Permission.objects.using(using).get(content_type__app_label=app, codename=codename)
            for app, codename in sorted(wanted)
        ]
        group, _ = Group.objects.using(using).get_or_create(name=role)
        group.permissions.set(permissions)


@transaction.atomic
def apply_roles(user: AbstractUser, roles: Iterable[str]) -> None:
    """Make the user's back-office access exactly `roles`: staff when it names a role, and a
    member of exactly those roles' groups. Names that are not roles are ignored (a claim such as
    `groups` carries other values too). Precondition: `user` is saved."""
    known = sorted({role for role in roles if role in ROLES})
    if user.is_staff != bool(known):
        user.is_staff = bool(known)
        user.save(update_fields=["is_staff"])
    user.groups.set(Group.objects.filter(name__in=known))

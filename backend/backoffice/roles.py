"""The back-office's two roles, realised as Django groups of the same names (created with their
permissions by migration 0002: a viewer holds the `view` permission of every back-office screen
and of the audit log; an operator also `change`, which the actions require, and `add`/`delete`
where the screen has them). Sign-in maps the roles claim (ADMIN_ROLES_CLAIM) onto them with `apply_roles`;
superusers (createsuperuser) hold every permission without a role.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction

VIEWER = "viewer"  # sees every screen and the audit log; changes nothing, runs no action
OPERATOR = "operator"  # also edits customers and runs the actions (resend, enable, rotate, ...)
ROLES = (VIEWER, OPERATOR)


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

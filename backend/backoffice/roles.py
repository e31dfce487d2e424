"""TEMPORARY stand-in for the admin branch's roles module (issue 26 part 1): the interface the
sign-in codes against. The admin branch's file replaces this one when `main` is merged."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group

VIEWER = "viewer"
OPERATOR = "operator"


def apply_roles(user: object, roles: Iterable[str]) -> None:
    """Staff exactly when a role is given; group membership exactly the roles given."""
    wanted = {role for role in roles if role in (VIEWER, OPERATOR)}
    user.is_staff = bool(wanted)  # type: ignore[attr-defined]
    user.save(update_fields=["is_staff"])  # type: ignore[attr-defined]
    groups = [Group.objects.get_or_create(name=name)[0] for name in sorted(wanted)]
    user.groups.set(groups)  # type: ignore[attr-defined]

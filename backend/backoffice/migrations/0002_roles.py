"""The roles' groups and their permissions (backend.backoffice.roles). Permissions are made
here first: Django only creates them after all migrations ran, and this one needs them now."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management import create_permissions
from django.db import migrations

# Frozen copies of roles.py's tables at this migration (a later change needs a new migration).
VIEWER = {
    "backoffice": {
        "order": ("view",),
        "customer": ("view",),
        "webhookendpoint": ("view",),
        "apiclient": ("view",),
    },
    "admin": {"logentry": ("view",)},
}
OPERATOR = {
    "backoffice": {
        "order": ("view", "change"),
        "customer": ("view", "add", "change", "delete"),
        "webhookendpoint": ("view", "change"),
        "apiclient": ("view", "add", "change", "delete"),
    },
    "admin": {"logentry": ("view",)},
}
ROLES = {"viewer": VIEWER, "operator": OPERATOR}


def add_roles(apps: Any, schema_editor: Any) -> None:
    for label in ("admin", "backoffice"):
        config = apps.get_app_config(label)
        config.models_module = True  # create_permissions skips apps it thinks have no models
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, table in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = [
            Permission.objects.get(content_type__app_label=app, codename=f"{action}_{model}")
            for app, models in table.items()
            for model, actions in models.items()
            for action in actions
        ]
        group.permissions.set(wanted)


def remove_roles(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0001_initial"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(add_roles, remove_roles)]

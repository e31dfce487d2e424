"""Webhook endpoints get an owner (the token `sub` that created them) and room for an encrypted
secret (contract v3 section 9, issue 24 items 3 and 7).

Rows from before this migration get the owner "", which no token has (a blank `sub` is refused):
they stay visible to nobody through the API, and keep receiving their events, until an operator
gives them to a subject (docs/webhooks.md, "Endpoints from before ownership"). The column has a
database default, so processes older than it still insert rows while the deploy rolls. Widening
`secret` from varchar(100) to text rewrites nothing.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("commands", "0007_order_note"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookendpoint",
            name="owner",
            field=models.TextField(db_default=""),
        ),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret",
            field=models.TextField(
                help_text="whsec_<base64>, shown once at creation; stored as a Fernet token "
                "(WEBHOOK_SECRET_KEYS, backend.commands.webhook_endpoints.seal_secret)"
            ),
        ),
        migrations.AddIndex(
            model_name="webhookendpoint",
            index=models.Index(
                condition=models.Q(deleted_at__isnull=True),
                fields=["owner", "id"],
                name="webhook_endpoint_owner_idx",
            ),
        ),
    ]

"""`sms_notifications.gateway_message_id` unique through a constraint instead of `unique=True`
(docs/performance.md, decision 30), and room on each page for HOT updates.

The state changes as Django generated it; the database keeps its unique constraint (same name,
same index) and only loses the `varchar_pattern_ops` index `unique=True` adds on PostgreSQL for
LIKE lookups, which nothing runs and every write of the row maintained. No index is rebuilt and
no write waits for more than the DROP INDEX. `fillfactor` 80 leaves a fifth of each new page free,
so the claim and publication updates, which change no indexed column, can stay on their page
without new index entries (HOT); existing pages keep their layout.
"""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def _like_indexes(schema_editor: BaseDatabaseSchemaEditor) -> list[str]:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'sms_notifications'"
            " AND indexname LIKE 'sms_notifications_gateway_message_id%_like'"
        )
        return [name for (name,) in cursor.fetchall()]


def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _like_indexes(schema_editor):
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"', params=None)
    schema_editor.execute("ALTER TABLE sms_notifications SET (fillfactor = 80)", params=None)


def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE sms_notifications RESET (fillfactor)", params=None)
    schema_editor.execute(
        'CREATE INDEX IF NOT EXISTS "sms_notifications_gateway_message_id_38011f84_like"'
        ' ON sms_notifications (gateway_message_id varchar_pattern_ops)',
        params=None,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("commands", "0005_webhooks"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="smsnotification",
                    name="gateway_message_id",
                    field=models.CharField(blank=True, max_length=100, null=True),
                ),
                migrations.AddConstraint(
                    model_name="smsnotification",
                    constraint=models.UniqueConstraint(
                        fields=("gateway_message_id",),
                        name="sms_notifications_gateway_message_id_key",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]

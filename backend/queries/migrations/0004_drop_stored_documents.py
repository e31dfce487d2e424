"""The projections no longer store their rendered JSON: the reads render the resources from their
columns (`backend.queries.resources`), so changing a column is an ordinary migration again."""

from importlib import import_module

from django.db import migrations

# Reversing re-creates what 0003 made, from its own statements.
_0003 = import_module("backend.queries.migrations.0003_documents")


class Migration(migrations.Migration):
    dependencies = [
        ("queries", "0003_documents"),
    ]

    operations = [
        migrations.RunSQL(
            [
                'ALTER TABLE "customer_view" DROP COLUMN "document"',
                'ALTER TABLE "order_view" DROP COLUMN "document"',
                "DROP FUNCTION customer_view_document",
                "DROP FUNCTION order_view_document",
                "DROP FUNCTION duka_json_time",
            ],
            reverse_sql=_0003.STATEMENTS,
        ),
    ]

"""Each projection row keeps its JSON document in a generated column (docs/performance.md,
decision 27): PostgreSQL renders it when the row is written, a read joins stored texts.

The statements are `backend.queries.documents`' rendering as it was when this migration was
written, word for word (`test_documents.py` compares them with the current rendering, so a field
added to a view fails until a new migration replaces the function and the column). PostgreSQL
only: the quick start's SQLite renders in Python. Adding a stored generated column rewrites the
table (a few seconds per million orders).
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

STATEMENTS = [
    'CREATE OR REPLACE FUNCTION duka_json_time(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN CASE WHEN length(t) = 21 THEN left(t, 20) ELSE rpad(left(t, -1), 24, \'0\') END || \'Z"\'',
    'CREATE OR REPLACE FUNCTION order_view_document(p_id bigint, p_customer_id bigint, p_customer_code text, p_customer_name text, p_item text, p_amount numeric, p_time timestamptz, p_sms_status text, p_sms_error text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN format(\'{"id": %s, "customer_id": %s, "customer_code": %s, "customer_name": %s, "item": %s, "amount": %s, "time": %s, "sms_status": %s, "sms_error": %s}\', p_id, p_customer_id, to_json(p_customer_code), to_json(p_customer_name), to_json(p_item), \'"\' || p_amount::text || \'"\', duka_json_time(to_json(p_time AT TIME ZONE \'UTC\')::text), to_json(p_sms_status), COALESCE((to_json(p_sms_error))::text, \'null\'))',
    'ALTER TABLE "order_view" ADD COLUMN "document" text GENERATED ALWAYS AS (order_view_document("id", "customer_id", "customer_code", "customer_name", "item", "amount", "time", "sms_status", "sms_error")) STORED',
    'CREATE OR REPLACE FUNCTION customer_view_document(p_id bigint, p_name text, p_code text, p_phone_number text, p_created_at timestamptz, p_updated_at timestamptz, p_order_count bigint, p_total_amount numeric, p_last_order_at timestamptz) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN format(\'{"id": %s, "name": %s, "code": %s, "phone_number": %s, "created_at": %s, "updated_at": %s, "order_count": %s, "total_amount": %s, "last_order_at": %s}\', p_id, to_json(p_name), to_json(p_code), to_json(p_phone_number), duka_json_time(to_json(p_created_at AT TIME ZONE \'UTC\')::text), duka_json_time(to_json(p_updated_at AT TIME ZONE \'UTC\')::text), p_order_count, \'"\' || p_total_amount::text || \'"\', COALESCE((duka_json_time(to_json(p_last_order_at AT TIME ZONE \'UTC\')::text))::text, \'null\'))',
    'ALTER TABLE "customer_view" ADD COLUMN "document" text GENERATED ALWAYS AS (customer_view_document("id", "name", "code", "phone_number", "created_at", "updated_at", "order_count", "total_amount", "last_order_at")) STORED',
]
REVERSE = [
    'ALTER TABLE "customer_view" DROP COLUMN "document"',
    'ALTER TABLE "order_view" DROP COLUMN "document"',
    "DROP FUNCTION customer_view_document",
    "DROP FUNCTION order_view_document",
    "DROP FUNCTION duka_json_time",
]


def _run(statements: list[str]):  # noqa: ANN202 - RunPython's callable
    def run(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("queries", "0002_sms_error"),
    ]

    operations = [
        migrations.RunPython(_run(STATEMENTS), _run(REVERSE), elidable=False),
    ]


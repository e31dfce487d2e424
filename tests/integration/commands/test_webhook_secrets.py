"""Webhook signing secrets are stored encrypted with WEBHOOK_SECRET_KEYS (issue 24 item 7): the
column never holds the secret, every listed key decrypts (rotation), migration 0009 encrypts the
plaintext rows written before it, and the actor signs with the secret shown at creation."""

from __future__ import annotations

import base64
import importlib
import io
import json

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from standardwebhooks.webhooks import Webhook

from backend.commands import webhook_endpoints
from backend.commands.models import WebhookDelivery, WebhookEndpoint
from backend.jobs.webhook_delivery import deliver
from tests.factories import make_customer
from tests.fixtures.receiver import Receiver

pytestmark = pytest.mark.django_db

OLD_KEY = "old-webhook-key-0123456789abcdef0123456789"
NEW_KEY = "new-webhook-key-fedcba9876543210fedcba9876"


@pytest.fixture
def private_ok(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    return settings


def new_endpoint(url: str = "http://127.0.0.1:9/hooks", *types: str) -> int:
    return webhook_endpoints.create_webhook_endpoint(
        webhook_endpoints.CreateWebhookEndpoint(
            owner="test-user", url=url, events=list(types or ["customer.created"])
        )
    )


def stored(endpoint_id: int) -> str:
    """The column as the database holds it (no model code in between)."""
    with connection.cursor() as cursor:
        cursor.execute('SELECT "secret" FROM "webhook_endpoints" WHERE "id" = %s', [endpoint_id])
        return cursor.fetchone()[0]


def test_the_stored_column_does_not_hold_the_secret(private_ok):
    endpoint_id = new_endpoint()
    secret = webhook_endpoints.get_secret(endpoint_id)

    assert secret.startswith("whsec_")
    key_bytes = base64.b64decode(secret.removeprefix("whsec_"))
    column = stored(endpoint_id)
    assert not column.startswith("whsec_")
    assert secret not in column
    assert secret.removeprefix("whsec_") not in column
    assert base64.urlsafe_b64encode(key_bytes).decode() not in column
    assert webhook_endpoints.open_secret(column) == secret


def test_every_listed_key_decrypts_and_the_first_encrypts(private_ok):
    private_ok.WEBHOOK_SECRET_KEYS = [OLD_KEY]
    endpoint_id = new_endpoint()
    secret = webhook_endpoints.get_secret(endpoint_id)
    under_old = stored(endpoint_id)

    # Rotation, step 1: the new key first, the old one still listed: old rows still decrypt.
    private_ok.WEBHOOK_SECRET_KEYS = [NEW_KEY, OLD_KEY]
    assert webhook_endpoints.get_secret(endpoint_id) == secret
    newer = new_endpoint()
    # Step 2: re-encrypt everything under the new key (only the old row changes).
    assert webhook_endpoints.reseal_secrets() == 1
    assert stored(endpoint_id) != under_old
    assert webhook_endpoints.reseal_secrets() == 0
    # Step 3: the old key dropped, both still decrypt.
    private_ok.WEBHOOK_SECRET_KEYS = [NEW_KEY]
    assert webhook_endpoints.get_secret(endpoint_id) == secret
    assert webhook_endpoints.get_secret(newer).startswith("whsec_")

    # A key that was never listed decrypts nothing; resealing then changes nothing.
    private_ok.WEBHOOK_SECRET_KEYS = [OLD_KEY]
    with pytest.raises(webhook_endpoints.UnreadableSecret):
        webhook_endpoints.get_secret(endpoint_id)
    before = stored(newer)
    with pytest.raises(webhook_endpoints.UnreadableSecret):
        webhook_endpoints.reseal_secrets()
    assert stored(newer) == before


def test_the_default_key_comes_from_the_django_secret_key(private_ok):
    endpoint_id = new_endpoint()
    secret = webhook_endpoints.get_secret(endpoint_id)
    private_ok.WEBHOOK_SECRET_KEYS = [NEW_KEY, private_ok.SECRET_KEY]
    assert webhook_endpoints.get_secret(endpoint_id) == secret
    private_ok.WEBHOOK_SECRET_KEYS = [NEW_KEY]
    with pytest.raises(webhook_endpoints.UnreadableSecret):
        webhook_endpoints.get_secret(endpoint_id)


def test_migration_0009_encrypts_plaintext_rows_and_reverses(private_ok):
    migration = importlib.import_module("backend.commands.migrations.0009_encrypt_webhook_secrets")
    plain = webhook_endpoints.new_secret()
    endpoint_id = new_endpoint()
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(secret=plain)  # as before 0009
    already = new_endpoint()
    already_stored = stored(already)

    migration.encrypt(apps, None)
    assert plain not in stored(endpoint_id)
    assert webhook_endpoints.get_secret(endpoint_id) == plain
    assert stored(already) == already_stored  # encrypted rows are left alone

    migration.decrypt(apps, None)
    assert stored(endpoint_id) == plain


def test_a_plaintext_row_from_an_older_process_still_signs_and_is_resealed(private_ok):
    plain = webhook_endpoints.new_secret()
    endpoint_id = new_endpoint()
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(secret=plain)
    assert webhook_endpoints.get_secret(endpoint_id) == plain
    assert webhook_endpoints.reseal_secrets() == 1
    assert plain not in stored(endpoint_id)
    assert webhook_endpoints.get_secret(endpoint_id) == plain


def test_a_delivery_verifies_with_the_secret_shown_at_creation(
    client, auth_headers, private_ok, receiver: Receiver
):
    created = client.post(
        "/api/v1/webhooks/",
        data=json.dumps({"url": receiver.url, "events": ["customer.created"]}),
        content_type="application/json",
        **auth_headers("webhooks:manage", "customers:read"),
    )
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    assert secret not in stored(created.json()["id"])

    customer_id = make_customer(name="Jane")
    [row] = WebhookDelivery.objects.all()
    assert deliver(row.pk) == "delivered"

    [got] = receiver.delivered
    payload = Webhook(secret).verify(got.body, got.headers)
    assert payload["type"] == "customer.created"
    assert payload["data"]["id"] == customer_id


def test_a_secret_no_key_decrypts_is_not_sent_and_says_why(private_ok, receiver: Receiver):
    new_endpoint(receiver.url)
    make_customer()
    private_ok.WEBHOOK_SECRET_KEYS = [NEW_KEY]  # the key that encrypted it is gone
    [row] = WebhookDelivery.objects.all()

    assert deliver(row.pk) == "retry"
    row.refresh_from_db()
    assert "cannot be decrypted" in row.last_error
    assert receiver.requests == []


def test_the_reseal_command_reports_and_refuses_without_a_key(private_ok):
    private_ok.WEBHOOK_SECRET_KEYS = [OLD_KEY]
    endpoint_id = new_endpoint()
    private_ok.WEBHOOK_SECRET_KEYS = [NEW_KEY, OLD_KEY]
    out = io.StringIO()
    call_command("reseal_webhook_secrets", stdout=out)
    assert out.getvalue().strip() == "re-encrypted 1 webhook secrets"

    private_ok.WEBHOOK_SECRET_KEYS = [OLD_KEY]  # the new key, which sealed it, is missing
    before = stored(endpoint_id)
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("reseal_webhook_secrets", stdout=io.StringIO())
    assert stored(endpoint_id) == before


def test_migrations_0008_and_0009_on_rows_from_before_them(private_ok):
    """The real migrations: a row written before them gets the owner "" (nobody's) and its
    plaintext secret encrypted; backwards restores the plaintext."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    before = [("commands", "0007_order_note")]
    latest = executor.loader.graph.leaf_nodes("commands")
    executor.migrate(before)
    plain = webhook_endpoints.new_secret()
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO "webhook_endpoints" ("url", "events", "description", "secret", '
            '"enabled", "disabled_reason", "created_at", "last_error") '
            "VALUES ('http://127.0.0.1:9/old', '[\"order.created\"]', '', %s, true, '', now(), '') "
            'RETURNING "id"',
            [plain],
        )
        endpoint_id = cursor.fetchone()[0]

    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    row = WebhookEndpoint.objects.get(pk=endpoint_id)
    assert row.owner == ""
    assert plain not in row.secret
    assert webhook_endpoints.get_secret(endpoint_id) == plain

    executor = MigrationExecutor(connection)
    executor.migrate([("commands", "0008_webhook_endpoint_owner")])
    assert stored(endpoint_id) == plain
    MigrationExecutor(connection).migrate(latest)

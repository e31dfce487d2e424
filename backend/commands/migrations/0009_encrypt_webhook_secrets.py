"""Encrypt the plaintext `whsec_` secrets of existing webhook endpoints with the first key of
WEBHOOK_SECRET_KEYS (issue 24 item 7). Reversible: backwards decrypts them again."""

from django.db import migrations


def encrypt(apps, schema_editor) -> None:
    from backend.commands.webhook_endpoints import PLAINTEXT_PREFIX, seal_secret

    endpoints = apps.get_model("commands", "WebhookEndpoint")
    for pk, secret in endpoints.objects.values_list("pk", "secret").iterator():
        if secret.startswith(PLAINTEXT_PREFIX):
            endpoints.objects.filter(pk=pk).update(secret=seal_secret(secret))


def decrypt(apps, schema_editor) -> None:
    from backend.commands.webhook_endpoints import open_secret

    endpoints = apps.get_model("commands", "WebhookEndpoint")
    for pk, secret in endpoints.objects.values_list("pk", "secret").iterator():
        endpoints.objects.filter(pk=pk).update(secret=open_secret(secret))


class Migration(migrations.Migration):
    dependencies = [
        ("commands", "0008_webhook_endpoint_owner"),
    ]

    operations = [migrations.RunPython(encrypt, decrypt)]

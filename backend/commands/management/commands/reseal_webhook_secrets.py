"""`reseal_webhook_secrets`: re-encrypt every webhook secret under the first key of
WEBHOOK_SECRET_KEYS, the middle step of a key rotation (docs/webhooks.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backend.commands import webhook_endpoints


class Command(BaseCommand):
    help = (
        "Re-encrypt every webhook endpoint's signing secret under the first key of "
        "WEBHOOK_SECRET_KEYS (run after putting a new key first; then drop the old keys)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            changed = webhook_endpoints.reseal_secrets()
        except webhook_endpoints.UnreadableSecret as exc:
            raise CommandError(f"{exc}; nothing was changed") from None
        self.stdout.write(f"re-encrypted {changed} webhook secrets")

"""`python manage.py createclient NAME --scopes "customers:read orders:write"`."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from backend.issuer.clients import UnknownScope, create_client
from backend.issuer.conf import API_SCOPES


class Command(BaseCommand):
    help = (
        "Register a client of the built-in issuer and print one JSON line "
        '{"client_id": ..., "client_secret": ...}. Scopes: ' + ", ".join(API_SCOPES)
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="a label for the client")
        parser.add_argument(
            "--scopes", required=True, help='space-separated, e.g. "customers:read orders:write"'
        )

    def handle(self, *args: Any, name: str, scopes: str, **options: Any) -> None:
        if settings.OIDC_ISSUER:
            raise CommandError(
                "OIDC_ISSUER is set, so the built-in issuer is off: register clients at that issuer"
            )
        if not name.strip():
            raise CommandError("NAME must not be empty")
        try:
            client_id, secret = create_client(name=name.strip(), scopes=scopes)
        except UnknownScope as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(json.dumps({"client_id": client_id, "client_secret": secret}))

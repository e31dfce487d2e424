from __future__ import annotations

import shlex
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from backend.issuer.clients import create_client

SCOPES = "customers:read customers:write orders:read orders:write"


class Command(BaseCommand):
    help = "Development quick start: migrate, create a client of the built-in issuer, print curl commands, serve."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-serve", action="store_true", help="set up and print, but do not serve"
        )

    def handle(self, *args: Any, port: int, no_serve: bool, **options: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        base = f"http://localhost:{port}"
        if settings.OIDC_ISSUER:
            self.stdout.write(f"Tokens come from {settings.OIDC_ISSUER} (OIDC_ISSUER is set).")
            self.stdout.write(self._back_office(base))
        else:
            client_id, secret = create_client(name="quickstart", scopes=SCOPES)
            # The docs page pre-fills OIDC_CLIENT_ID in Swagger UI's Authorize dialog: make it this
            # client's (this process serves below; the built-in issuer reads the setting nowhere else).
            settings.OIDC_CLIENT_ID = client_id
            token = (
                f"TOKEN=$(curl -s -u {shlex.quote(client_id + ':' + secret)} "
                f"-d grant_type=client_credentials -d scope={shlex.quote(SCOPES)} {base}/o/token/ "
                "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
            )
            self.stdout.write(
                "\n".join(
                    [
                        "",
                        "Duka quick start (embedded PostgreSQL, in-process SMS worker, console SMS, built-in issuer).",
                        f"A client with every scope was created: client_id={client_id}",
                        "",
                        "Get a token (valid 15 minutes):",
                        f"  {token}",
                        "Call the API with it:",
                        f"  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' "
                        f'-d \'{{"name": "Jane", "code": "JANE", "phone_number": "0712345678"}}\' '
                        f"{base}/api/v1/customers/",
                        f'  curl -s -H "Authorization: Bearer $TOKEN" {base}/api/v1/customers/',
                        f"API docs: {base}/api/v1/docs (Authorize: client_id is pre-filled; "
                        f"client_secret: {secret})",
                        self._back_office(base),
                        "",
                    ]
                )
            )
        if not no_serve:
            call_command("runserver", f"127.0.0.1:{port}", use_reloader=False)

    @staticmethod
    def _back_office(base: str) -> str:
        if not settings.ADMIN_ENABLED:
            return "Back-office: off (ADMIN_ENABLED=0)."
        if settings.OIDC_ISSUER and settings.OIDC_CLIENT_ID and settings.OIDC_CLIENT_SECRET:
            values = ", ".join(settings.ADMIN_VIEWER_ROLES + settings.ADMIN_OPERATOR_ROLES)
            how = (
                f"sign in with {settings.OIDC_ISSUER} (the claim {settings.ADMIN_ROLES_CLAIM} must "
                f"hold one of: {values}), or with a password from `manage.py createsuperuser`"
            )
        else:
            how = "sign in with a password; create the first account with\n  uv run python manage.py createsuperuser"
        return f"Back-office: {base}/admin/ ; {how}"

"""`migrate` without the service's per-statement bound.

Every connection runs with `statement_timeout` (DATABASE_STATEMENT_TIMEOUT_MS) so no request can
hang; a migration that rewrites or indexes a large table legitimately runs longer, so this
session lifts it. `lock_timeout` stays: a migration that cannot get its lock within it fails (the
release step can be re-run) instead of queueing every request behind its lock.
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections


class Command(DjangoMigrate):
    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")
        try:
            super().handle(*args, **options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET statement_timeout")  # back to the connection's own bound

"""PostgreSQL with every statement counted and timed (see `backend.observability.db`)."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base
from django_prometheus.db.common import DatabaseWrapperMixin

from backend.observability.db import instrumented_cursor_class


class DatabaseWrapper(DatabaseWrapperMixin, base.DatabaseWrapper):
    """django-prometheus' PostgreSQL wrapper (its connection counters come from the mixin)
    with the cheaper cursor class."""

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        params["cursor_factory"] = instrumented_cursor_class(
            params["cursor_factory"], self.alias, self.vendor
        )
        return params

    def create_cursor(self, name: str | None = None) -> Any:
        # psycopg already makes instrumented cursors (cursor_factory above); the mixin's own
        # create_cursor is written for psycopg2.
        return base.DatabaseWrapper.create_cursor(self, name=name)

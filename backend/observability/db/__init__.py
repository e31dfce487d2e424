"""django-prometheus' statement series for statements run without a Django cursor.

Cursors are counted by django-prometheus' own database engine (settings' `_ENGINES`); this is
only for `backend.database`, which runs statements on the raw connection.
"""

from __future__ import annotations

from functools import cache

from django_prometheus.db.metrics import (
    errors_total,
    execute_many_total,
    execute_total,
    query_duration_seconds,
)


class StatementMeter:
    """The children one connection's statements count into (its alias and vendor never change)."""

    def __init__(self, alias: str, vendor: str) -> None:
        self.alias = alias
        self.vendor = vendor
        self.executed = execute_total.labels(alias, vendor)
        self.executed_in_bulk = execute_many_total.labels(alias, vendor)
        self.duration = query_duration_seconds.labels(alias, vendor)

    def error(self, exc: BaseException) -> None:
        errors_total.labels(self.alias, self.vendor, type(exc).__name__).inc()


@cache
def statement_meter(alias: str, vendor: str) -> StatementMeter:
    """The children of (`alias`, `vendor`), for statements run without a cursor
    (`backend.database`)."""
    return StatementMeter(alias, vendor)

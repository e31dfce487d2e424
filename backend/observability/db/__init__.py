"""Database backends that count and time every statement for Prometheus.

The series are django-prometheus' own (`django_db_execute_total`,
`django_db_query_duration_seconds`, `django_db_errors_total`, ...; same names, labels and
meaning), written with less work per statement: its cursor wrapper looks each labelled child up
again on every `execute` and builds a new exception counter each time, while the alias and
vendor labels of a connection's cursors never change.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from time import perf_counter
from typing import Any

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
    """Shared by the cursors below and by statements run without a cursor
    (`backend.database.prepared`)."""
    return StatementMeter(alias, vendor)


def instrumented_cursor_class(cursor_class: type, alias: str, vendor: str) -> type:
    """A subclass of `cursor_class` counting into the children of (`alias`, `vendor`)."""
    meter = statement_meter(alias, vendor)
    executed, executed_in_bulk, duration = meter.executed, meter.executed_in_bulk, meter.duration
    count_error = meter.error

    class InstrumentedCursor(cursor_class):  # type: ignore[valid-type, misc]
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            executed.inc()
            started = perf_counter()
            try:
                return super().execute(*args, **kwargs)
            except BaseException as exc:
                count_error(exc)
                raise
            finally:
                duration.observe(max(perf_counter() - started, 0.0))

        def executemany(
            self, query: Any, param_list: Iterable[Any], *args: Any, **kwargs: Any
        ) -> Any:
            executed.inc(len(param_list))  # type: ignore[arg-type]
            executed_in_bulk.inc(len(param_list))  # type: ignore[arg-type]
            started = perf_counter()
            try:
                return super().executemany(query, param_list, *args, **kwargs)
            except BaseException as exc:
                count_error(exc)
                raise
            finally:
                duration.observe(max(perf_counter() - started, 0.0))

    InstrumentedCursor.__name__ = InstrumentedCursor.__qualname__ = (
        f"Instrumented{cursor_class.__name__}"
    )
    return InstrumentedCursor

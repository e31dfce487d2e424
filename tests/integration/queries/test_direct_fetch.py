"""`sql.fetch(..., untyped=True)` runs the SQL-rendered documents on the psycopg cursor without
Django's wrappers, unless someone hooks those (query capture, execute wrappers)."""

from __future__ import annotations

import pytest
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django_prometheus.db.metrics import execute_total

from backend.queries import documents, sql

pytestmark = pytest.mark.django_db


def _executed() -> float:
    return execute_total.labels("default", connection.vendor)._value.get()


def test_untyped_reads_skip_django_cursor_but_are_still_counted(monkeypatch):
    if not documents.available():
        pytest.skip("PostgreSQL only")
    before = _executed()

    def no_django_cursor() -> None:
        raise AssertionError("Django's cursor was used")

    monkeypatch.setattr(connection, "cursor", no_django_cursor)
    assert sql.fetch("SELECT %s::text, 1, true", ["x"], (), untyped=True) == [("x", 1, True)]
    assert _executed() == before + 1  # the connection's instrumented psycopg cursor


def test_captured_queries_take_django_cursor():
    with CaptureQueriesContext(connection) as captured:
        sql.fetch("SELECT 1", [], (), untyped=True)
    assert [query["sql"] for query in captured.captured_queries] == ["SELECT 1"]


def test_errors_are_django_errors():
    with pytest.raises(DataError), transaction.atomic():
        sql.fetch("SELECT 1 / %s", [0], (), untyped=True)

"""`sql.fetch(..., untyped=True)` runs the SQL-rendered documents on the psycopg cursor without
Django's wrappers, unless someone hooks those (query capture, execute wrappers)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import psycopg.conninfo
import pytest
from django.db import DataError, OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django_prometheus.db.metrics import errors_total, execute_total

from backend.database import prepared
from backend.queries import documents, sql
from backend.queries.models import OrderView
from tests.cursors import unstamped
from tests.factories import make_customer, make_order

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


# --- the libpq path (`backend.database.prepared`) -------------------------------------------------


def _postgres() -> None:
    if not documents.available():
        pytest.skip("PostgreSQL only")


def _name(query: str, params: list[object]) -> str:
    """The name the libpq path prepares `query` under, for these parameters' types."""
    types = tuple(prepared._dump(value)[1] for value in params)
    return prepared.statement(query, False, types).name.decode()


def _prepared_here() -> set[str]:
    with connection.connection.cursor() as cursor:  # psycopg's own: not prepared by us
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_untyped_reads_are_prepared_once_per_connection():
    _postgres()
    query = "SELECT %s::bigint + 40, 'once'"
    assert sql.fetch(query, [2], (), untyped=True) == [(42, "once")]
    name = _name(query, [2])
    assert name in _prepared_here()
    assert sql.fetch(query, [3], (), untyped=True) == [(43, "once")]
    assert _name(query, [3]) == name
    connection.close()  # a new connection prepares it again
    assert sql.fetch(query, [4], (), untyped=True) == [(44, "once")]
    assert name in _prepared_here()


@pytest.mark.django_db(transaction=True)
def test_parameters_and_columns_keep_their_types():
    _postgres()
    when = datetime(2026, 12, 6, 9, 58, 35, 79000, tzinfo=UTC)
    rows = sql.fetch(
        "SELECT %s::text, %s::bigint, %s::boolean, %s::numeric::text, %s::timestamptz = "
        "'2026-12-06T09:58:35.079Z', %s::text IS NULL, 'é\"\\'",
        ["naïve 'quoted' %s", 2**62, False, Decimal("12.50"), when, None],
        (),
        untyped=True,
    )
    assert rows == [("naïve 'quoted' %s", 2**62, False, "12.50", True, True, 'é"\\')]
    assert sql.fetch("SELECT 1 WHERE false", [], (), untyped=True) == []


@pytest.mark.django_db(transaction=True)
def test_what_it_cannot_carry_is_a_type_error():
    _postgres()
    with pytest.raises(TypeError, match="no text form for a float"):
        sql.fetch("SELECT %s::float8", [1.5], (), untyped=True)
    with pytest.raises(TypeError, match="no loader for a column of type oid 1184"):
        sql.fetch("SELECT now()", [], (), untyped=True)
    with pytest.raises(ValueError, match=r"only %s or %\(name\)s placeholders"):
        prepared.statement("SELECT 5 %% 2", False, ())


@pytest.mark.django_db(transaction=True)
def test_a_statement_the_server_forgot_is_prepared_again():
    _postgres()
    query = "SELECT %s::int * 2"
    assert sql.fetch(query, [21], (), untyped=True) == [(42,)]
    with connection.connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # what a pooler's DISCARD ALL does
    before = _executed()
    assert sql.fetch(query, [5], (), untyped=True) == [(10,)]
    assert _executed() == before + 1
    # psycopg deallocates everything after a rollback of a transaction where it had prepared.
    conn = connection.connection
    conn.autocommit = False
    try:
        with conn.cursor() as cursor:
            for _ in range(6):  # past its prepare_threshold
                cursor.execute("SELECT %s::int", [1])
        conn.rollback()
    finally:
        conn.autocommit = True
    assert _name(query, [1]) not in _prepared_here()
    assert sql.fetch(query, [7], (), untyped=True) == [(14,)]


@pytest.mark.django_db(transaction=True)
def test_errors_are_counted_and_the_connection_stays_usable():
    _postgres()
    errors = errors_total.labels("default", "postgresql", "DivisionByZero")
    before = errors._value.get()
    with pytest.raises(DataError, match="division by zero"):
        sql.fetch("SELECT 1 / %s", [0], (), untyped=True)
    assert errors._value.get() == before + 1
    assert sql.fetch("SELECT 1 / %s", [1], (), untyped=True) == [(1,)]


@pytest.mark.django_db(transaction=True)
def test_a_lost_connection_is_an_operational_error_and_is_replaced():
    _postgres()
    sql.fetch("SELECT 1", [], (), untyped=True)
    victim = connection.connection.info.backend_pid
    with psycopg.connect(_dsn(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [victim])
    with pytest.raises(OperationalError):
        sql.fetch("SELECT 2", [], (), untyped=True)
    assert connection.errors_occurred
    connection.close_if_unusable_or_obsolete()  # what the request's end does
    assert sql.fetch("SELECT 3", [], (), untyped=True) == [(3,)]
    assert connection.connection.info.backend_pid != victim


def test_without_prepared_statements_the_cursor_runs_it(monkeypatch):
    """Behind a transaction-pooling pgbouncer (DATABASE_PREPARED_STATEMENTS=0) nothing is
    prepared: the next transaction may land on another server connection."""
    _postgres()
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    query = "SELECT %s::int - 1"
    assert sql.fetch(query, [43], (), untyped=True) == [(42,)]
    assert _name(query, [1]) not in _prepared_here()


def _dsn() -> str:
    params = connection.get_connection_params()
    return psycopg.conninfo.make_conninfo(
        **{k: v for k, v in params.items() if k in ("host", "port", "user", "password", "dbname")}
    )


@pytest.mark.django_db(transaction=True)
def test_in_a_transaction_psycopgs_cursor_runs_it():
    """`atomic()` begins lazily: psycopg sends BEGIN before the block's first statement, so a
    read in a block goes through its cursor (`now()` is the transaction's start: the same for
    every statement of one transaction, new for each statement outside one)."""
    _postgres()
    query = "SELECT now()::text"
    with transaction.atomic():
        [(first,)] = sql.fetch(query, [], (), untyped=True)
        time.sleep(0.002)
        [(second,)] = sql.fetch(query, [], (), untyped=True)
    assert first == second
    assert _name(query, []) not in _prepared_here()
    [(first,)] = sql.fetch(query, [], (), untyped=True)
    time.sleep(0.002)
    [(second,)] = sql.fetch(query, [], (), untyped=True)
    assert first != second
    assert _name(query, []) in _prepared_here()


@pytest.mark.django_db(transaction=True)
def test_documents_are_the_same_bytes_on_both_paths(monkeypatch):
    """The API's reads run outside transactions, on the libpq path; most tests run inside one,
    on psycopg's cursor. Both give the same documents."""
    _postgres()
    customer_id = make_customer(name="Ann 100% _real_ \u00e9l\u00e8ve", code="Ann-1")
    make_customer()
    make_customer()
    for n in range(3):
        make_order(customer_id, item=f"Item \u00e9 {n}")
    first_page = json.loads(documents.order_page(limit=2))
    early, late = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    renders = [
        lambda: documents.order_page(limit=2),
        lambda: documents.order_page(limit=2, cursor=first_page["next_cursor"]),
        lambda: documents.order_page(limit=50, customer_id=customer_id, sms_status="pending"),
        lambda: documents.order_page(limit=50, since=early, until=late),
        lambda: documents.order_page(limit=50, since=late),
        lambda: documents.customer_page(limit=2),
        lambda: documents.customer_page(limit=50, search="100% _real_ \u00e9l"),
        lambda: documents.customer_page(limit=50, code="ANN-1"),
        lambda: documents.order(OrderView.objects.order_by("id").first().id),
        lambda: documents.customer(customer_id),
    ]
    fast = [render() for render in renders]
    assert [len(json.loads(body).get("items", [1])) for body in fast] == [
        2,
        1,
        3,
        3,
        0,
        2,
        1,
        1,
        1,
        1,
    ]
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    # Bytes for bytes, but for the cursors' signing second (tests/cursors.py).
    assert [unstamped(render()) for render in renders] == [unstamped(body) for body in fast]
    assert '"next_cursor": "' in fast[0]
    assert unstamped(fast[0]) != fast[0]  # the stamp was there to drop

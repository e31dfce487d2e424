"""One statement on PostgreSQL without Django's cursor wrappers (docs/performance.md, decisions
20 and 28), for the hot paths: the documents' reads and the order's write."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import pq

from backend.database import prepared
from backend.observability.db import statement_meter

Row = tuple[Any, ...]


def fetchall(
    connection: BaseDatabaseWrapper, sql: str, params: Sequence[Any] | Mapping[str, Any]
) -> list[Row]:
    """What Django's `cursor().execute(); fetchall()` does, for a PostgreSQL connection.

    Django's cursor when someone hooks it (query capture in tests and DEBUG, execute wrappers).
    Else the checks its cursor makes, then, where prepared statements are allowed (no pgbouncer)
    and the connection is in autocommit, one libpq call (`prepared`); in a transaction psycopg's
    cursor, which sends the BEGIN a lazily begun `atomic()` owes, and whose `DEALLOCATE ALL`
    after a rollback only a statement outside a transaction recovers from (by preparing again).
    Statements are counted for Prometheus either way, and errors become Django's (the replica
    fallback and the 503 mapping rely on it; `errors_occurred` gets a broken connection replaced
    at the request's end)."""
    if connection.queries_logged or connection.execute_wrappers:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.validate_no_broken_transaction()
    conn = connection.connection
    with connection.wrap_database_errors:
        if (
            conn.prepare_threshold is not None
            and conn.autocommit
            and conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
        ):
            meter = statement_meter(connection.alias, connection.vendor)
            return prepared.fetch(conn, meter, sql, params)
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

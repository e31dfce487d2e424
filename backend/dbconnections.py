"""Database connections the database dropped: found before a request uses them, and closed
after a request failed on them, so no process needs a restart once the database is back.

Connections persist across requests (CONN_MAX_AGE) without Django's per-request health check
(a `SELECT 1` round trip before each request's first query). A server that restarts, fails
over or terminates a backend closes the socket of every idle connection, which then turns
readable while nothing is in flight. `drop_dead` polls for exactly that (no wait, no round
trip) and runs Django's usability check only then: the first request after a database
restart reconnects instead of failing on the stale connection. `close_broken` closes, after a
request failed on the database, the connections of this thread that no longer work, even
where Django's end-of-request clean-up does not run (the test client, a worker thread).
"""

from __future__ import annotations

import contextlib
import select

import psycopg
from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper


def _close(connection: BaseDatabaseWrapper) -> None:
    with contextlib.suppress(DatabaseError):
        connection.close()


def _idle_and_signalled(connection: BaseDatabaseWrapper) -> bool:
    """The idle connection's socket has something to read (a FATAL message, end of file) or
    the driver already knows it is closed."""
    raw = connection.connection
    if raw is None or connection.in_atomic_block:
        return False
    if raw.closed:
        return True
    poller = select.poll()
    poller.register(raw.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def drop_dead() -> None:
    """Before a request: close this thread's idle connections the server has closed."""
    for connection in connections.all(initialized_only=True):
        try:
            dead = _idle_and_signalled(connection) and not connection.is_usable()
        except (OSError, ValueError, DatabaseError, psycopg.Error):
            dead = True
        if dead:
            _close(connection)


def close_broken() -> None:
    """After a database error: close this thread's connections that no longer work (outside a
    transaction; a transaction's own rollback deals with its connection)."""
    for connection in connections.all(initialized_only=True):
        raw = connection.connection
        if raw is None or connection.in_atomic_block:
            continue
        if raw.closed or not connection.is_usable():
            _close(connection)

"""`DATABASE_LISTEN_URL`: the dispatcher's LISTEN goes to its own (direct) connection, so a
deployment behind a transaction-pooling pgbouncer is still woken by each commit."""

from __future__ import annotations

import threading
from urllib.parse import quote

import pytest
from django.db import connection

from backend.jobs.dispatcher import Listener
from tests.factories import make_customer, make_order

pytestmark = pytest.mark.django_db(transaction=True)

APPLICATION = "duka_listen_url_test"


def _listen_url() -> str:
    """The test database's URL, named so that its sessions can be told apart."""
    params = connection.get_connection_params()
    host = quote(str(params.get("host") or "127.0.0.1"), safe="")
    port = params.get("port") or 5432
    user = params.get("user") or "postgres"
    return f"postgres://{user}@{host}:{port}/{params['dbname']}?application_name={APPLICATION}"


def _listening_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APPLICATION]
        )
        [(count,)] = cursor.fetchall()
    return count


def test_the_listener_uses_database_listen_url_and_wakes_on_a_commit(settings):
    settings.DATABASE_LISTEN_URL = _listen_url()
    listener = Listener()
    stop = threading.Event()
    try:
        assert listener.wait(
            0.1, stop
        )  # connects; reports a wake-up (a commit may have slipped in)
        assert _listening_sessions() == 1
        make_order(make_customer())  # its commit NOTIFYs the outbox channel
        assert listener.wait(10.0, stop)
    finally:
        listener.close()


def test_without_it_the_listener_uses_the_default_database(settings):
    settings.DATABASE_LISTEN_URL = None
    listener = Listener()
    stop = threading.Event()
    try:
        assert listener.wait(0.1, stop)
        assert _listening_sessions() == 0
        make_order(make_customer())
        assert listener.wait(10.0, stop)
    finally:
        listener.close()

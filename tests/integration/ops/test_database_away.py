"""The database going away and coming back (contract section 6): every request that needs it is
a 503 problem with `Retry-After` meanwhile, never a 500, and requests succeed again within
15 s of it answering, on the same process and its persistent connections.

The requests reach PostgreSQL through a loopback TCP proxy that the tests stop (connections
refused, the open ones cut) and start again, as a restart or a failover at the same address
looks to the application; or their backend is terminated with `pg_terminate_backend`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.db import connections
from django.test import Client

from backend.problems import PROBLEM_BASE
from tests.factories import make_customer
from tests.fixtures.auth import bearer, builtin_token
from tests.fixtures.broker import database_url
from tests.fixtures.tcp_proxy import TcpProxy
from tests.integration.ops.test_gunicorn import procfile_web

pytestmark = pytest.mark.django_db(transaction=True)
RECOVERY_SECONDS = 15.0
SCOPES = ("customers:read", "customers:write", "orders:read", "orders:write")


@pytest.fixture
def through_proxy(postgres_proxy: TcpProxy) -> Iterator[TcpProxy]:
    """The default connection of this thread goes through the proxy for the test."""
    connection = connections["default"]
    saved = connection.settings_dict["HOST"], connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["HOST"], connection.settings_dict["PORT"] = (
        "127.0.0.1",
        postgres_proxy.port,
    )
    try:
        yield postgres_proxy
    finally:
        connection.close()
        connection.settings_dict["HOST"], connection.settings_dict["PORT"] = saved
        if not postgres_proxy.running:
            postgres_proxy.start()


def headers() -> dict[str, str]:
    return bearer(builtin_token(*SCOPES, sub="database-away"))


def get_customer(client: Client, customer_id: int):
    return client.get(f"/api/v1/customers/{customer_id}/", **headers())


def assert_database_unavailable(response) -> None:
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert body["type"] == PROBLEM_BASE + "database-unavailable"
    assert body["status"] == 503
    assert "Traceback" not in response.content.decode()


def wait_for_success(request, timeout: float = RECOVERY_SECONDS) -> list[int]:
    """Repeat `request()` until it answers 2xx; returns the statuses seen (bounded)."""
    statuses: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        status = request().status_code
        statuses.append(status)
        if status < 300:
            return statuses
        assert time.monotonic() < deadline, f"no success within {timeout}s: {statuses}"
        time.sleep(0.2)


def test_while_the_database_is_away_requests_are_503_and_they_recover_without_a_restart(
    through_proxy: TcpProxy,
):
    customer = make_customer()
    client = Client()
    assert get_customer(client, customer).status_code == 200  # a persistent connection now

    through_proxy.stop()  # the database goes away: the open connection is cut, new ones refused
    assert_database_unavailable(get_customer(client, customer))
    assert_database_unavailable(get_customer(client, customer))
    assert_database_unavailable(
        client.post(
            "/api/v1/customers/",
            {"name": "Away", "code": "A" + uuid.uuid4().hex[:10], "phone_number": "0712345678"},
            content_type="application/json",
            **headers(),
        )
    )
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready["Retry-After"]

    through_proxy.start()  # back at the same address
    statuses = wait_for_success(lambda: get_customer(client, customer))
    assert set(statuses) <= {200, 503}, statuses
    assert wait_for_success(lambda: client.get("/readyz"))[-1] == 200


def test_a_connection_dropped_while_idle_is_replaced_before_a_request_uses_it(
    through_proxy: TcpProxy,
):
    customer = make_customer()
    client = Client()
    assert get_customer(client, customer).status_code == 200

    through_proxy.restart()  # a restart between two requests: the idle connection is dead
    assert get_customer(client, customer).status_code == 200
    assert client.get("/readyz").status_code == 200


def test_a_terminated_backend_is_replaced_before_a_request_uses_it() -> None:
    customer = make_customer()
    client = Client()
    assert get_customer(client, customer).status_code == 200
    connection = connections["default"]
    pid = connection.connection.info.backend_pid

    with psycopg.connect(database_url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, "the backend did not end"
            time.sleep(0.05)

    assert get_customer(client, customer).status_code == 200


def test_a_gunicorn_web_process_answers_503_while_away_and_recovers_without_a_restart(
    postgres_proxy: TcpProxy, tmp_path: Path
):
    """The Procfile's web command (gthread: a persistent connection per thread) through the
    proxy: the same, with Django's own end-of-request clean-up in play."""
    customer = make_customer()
    url = urlsplit(database_url())
    proxied = urlunsplit(
        url._replace(netloc=f"{url.netloc.rpartition('@')[0]}@127.0.0.1:{postgres_proxy.port}")
    )
    auth = {"Authorization": headers()["HTTP_AUTHORIZATION"]}
    path = f"/api/v1/customers/{customer}/"
    with procfile_web(tmp_path, env={"TEST_DATABASE_URL": proxied}) as server:
        assert [server.get(path, auth)[0] for _ in range(4)] == [200] * 4  # both threads warm

        postgres_proxy.stop()
        for _ in range(4):
            status, body, response_headers = server.get(path, auth)
            assert status == 503, body
            assert int(response_headers["Retry-After"]) > 0
            assert json.loads(body)["type"] == PROBLEM_BASE + "database-unavailable"
        assert server.get("/readyz")[0] == 503

        postgres_proxy.start()
        deadline = time.monotonic() + RECOVERY_SECONDS
        while (status := server.get(path, auth)[0]) != 200:
            assert status == 503, status
            assert time.monotonic() < deadline, "no success within 15 s of the database's return"
            time.sleep(0.2)
        assert [server.get(path, auth)[0] for _ in range(6)] == [200] * 6

        postgres_proxy.restart()  # between requests: every thread's idle connection is dead
        assert [server.get(path, auth)[0] for _ in range(6)] == [200] * 6
        assert server.get("/readyz")[0] == 200
    assert "Traceback" not in server.log, server.log[-4000:]

"""Duka behind a real pgbouncer in transaction mode (Debian's 1.18), as docs/operate.md says to
run it: the web (gunicorn, the Procfile's command), the worker and its outbox dispatcher all
reach PostgreSQL through pgbouncer with `DATABASE_PREPARED_STATEMENTS=0`, the dispatcher LISTENs
on `DATABASE_LISTEN_URL` (direct), and the lock and statement timeouts live on the role
(`ALTER ROLE ... SET`), because pgbouncer refuses the startup `options` that carry them otherwise
(and, told to ignore them, drops them): `DATABASE_LOCK_TIMEOUT_MS=0` and
`DATABASE_STATEMENT_TIMEOUT_MS=0` make the application send none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from backend.settings import base
from tests.fixtures.auth import API_SCOPES, builtin_token
from tests.fixtures.broker import ROOT
from tests.fixtures.pgbouncer import Pgbouncer
from tests.integration.jobs.conftest import gateway_env, wait_for_sms_status
from tests.integration.ops.test_gunicorn import Server, procfile_web

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LOCK_TIMEOUT = "1s"
STATEMENT_TIMEOUT = "3s"
CALLBACK_TOKEN = "pgbouncer-callback-token-0123456789abcdef"
LISTEN_APPLICATION = "duka_pgbouncer_listen"


@pytest.fixture
def role_timeouts(transactional_db: None) -> Iterator[None]:
    """The timeouts on the role, for the test database only: what every server connection that
    pgbouncer opens starts with."""
    database = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        for name, value in (
            ("lock_timeout", LOCK_TIMEOUT),
            ("statement_timeout", STATEMENT_TIMEOUT),
        ):
            cursor.execute(
                f"ALTER ROLE CURRENT_USER IN DATABASE \"{database}\" SET {name} = '{value}'"
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER ROLE CURRENT_USER IN DATABASE "{database}" RESET ALL')


def app_env(pgbouncer: Pgbouncer, redis_url: str, namespace: str) -> dict[str, str]:
    """The application's environment behind pgbouncer (docs/operate.md)."""
    listen = f"{pgbouncer.direct_url}?application_name={LISTEN_APPLICATION}"
    return {
        "TEST_DATABASE_URL": pgbouncer.url,
        "DATABASE_PREPARED_STATEMENTS": "0",
        "DATABASE_LOCK_TIMEOUT_MS": "0",
        "DATABASE_STATEMENT_TIMEOUT_MS": "0",
        "DATABASE_LISTEN_URL": listen,
        "REDIS_URL": redis_url,
        "DUKA_TEST_DRAMATIQ_NAMESPACE": namespace,
        "SMS_CALLBACK_TOKEN": CALLBACK_TOKEN,
    }


def call(web: Server, method: str, path: str, body: dict | None = None, **headers: str):
    status, raw, response_headers = web.request(method, path, body=body, headers=headers)
    return status, (json.loads(raw) if raw else None), response_headers


def post_form(web: Server, path: str, form: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(
        web.url + path,
        data=urllib.parse.urlencode(form).encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_web_worker_and_dispatcher_work_through_pgbouncer_in_transaction_mode(
    pgbouncer,
    role_timeouts,
    redis_broker,
    redis_url,
    redis_namespace,
    worker_process,
    gateway,
    receiver,
    tmp_path: Path,
):
    env = app_env(pgbouncer, redis_url, redis_namespace)
    worker = worker_process(env={**env, **gateway_env(gateway)})
    auth = {"Authorization": f"Bearer {builtin_token(*API_SCOPES, sub='pgbouncer-test')}"}
    with procfile_web(tmp_path, env=env) as web:
        assert web.get("/readyz")[0] == 200

        # Writes, with a webhook endpoint that hears about them.
        status, hook, _ = call(
            web,
            "POST",
            "/api/v1/webhooks/",
            {"url": receiver.url, "events": ["order.created", "order.sms_status_changed"]},
            **auth,
        )
        assert status == 201, hook
        customers = []
        for n in range(2):
            status, customer, _ = call(
                web,
                "POST",
                "/api/v1/customers/",
                {"name": f"Pooled {n}", "code": f"PGB{n}", "phone_number": f"+25471200000{n}"},
                **auth,
            )
            assert status == 201, customer
            customers.append(customer["id"])
        key = {"Idempotency-Key": f"pgbouncer-{uuid.uuid4()}"}
        order_body = {"customer_id": customers[0], "item": "Lamp", "amount": "40.00"}
        status, order, _ = call(web, "POST", "/api/v1/orders/", order_body, **auth, **key)
        assert status == 201, order
        status, replay, replay_headers = call(
            web, "POST", "/api/v1/orders/", order_body, **auth, **key
        )
        assert (status, replay["id"]) == (201, order["id"])
        assert replay_headers.get("Idempotent-Replayed") == "true"
        status, patched, _ = call(
            web, "PATCH", f"/api/v1/customers/{customers[1]}/", {"name": "Renamed"}, **auth
        )
        assert (status, patched["name"]) == (200, "Renamed")

        # Reads: one by id, and list pages followed by their cursor.
        status, shown, _ = call(web, "GET", f"/api/v1/orders/{order['id']}/", **auth)
        assert (status, shown["item"]) == (200, "Lamp")
        status, page, _ = call(web, "GET", "/api/v1/customers/?limit=1", **auth)
        assert status == 200 and len(page["items"]) == 1 and page["next_cursor"]
        cursor = urllib.parse.quote(page["next_cursor"])
        status, second, _ = call(web, "GET", f"/api/v1/customers/?limit=1&cursor={cursor}", **auth)
        assert status == 200
        assert {page["items"][0]["id"], second["items"][0]["id"]} == set(customers)
        status, orders, _ = call(web, "GET", "/api/v1/orders/?limit=10", **auth)
        assert (status, [o["id"] for o in orders["items"]]) == (200, [order["id"]])
        status, hooks, _ = call(web, "GET", "/api/v1/webhooks/", **auth)
        assert (status, [h["id"] for h in hooks["items"]]) == (200, [hook["id"]])

        # The worker sends the SMS; Africa's Talking's delivery report reaches the web.
        wait_for_sms_status(order["id"], "sent", timeout=30)
        [message] = gateway.messages
        status, ack = post_form(
            web,
            f"/api/v1/sms/delivery-reports/?token={CALLBACK_TOKEN}",
            {"id": message.message_id or "", "status": "Success", "phoneNumber": "+254712000000"},
        )
        assert (status, ack) == (200, {"updated": True})
        status, shown, _ = call(web, "GET", f"/api/v1/orders/{order['id']}/", **auth)
        assert shown["sms_status"] == "delivered"

        # Every event reached the receiver, signed (created, sent, delivered).
        receiver.wait_for(lambda r: len(r.delivered) >= 3)
        kinds = [json.loads(r.body)["type"] for r in receiver.delivered]
        assert sorted(kinds) == sorted(["order.created"] + ["order.sms_status_changed"] * 2)
        assert all(r.headers.get("webhook-signature") for r in receiver.delivered)

    # The dispatcher LISTENs on its direct connection, not through pgbouncer.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT query FROM pg_stat_activity WHERE application_name = %s", [LISTEN_APPLICATION]
        )
        assert [row[0] for row in cursor.fetchall()] == ["LISTEN duka_outbox"]
    assert "cannot LISTEN" not in worker.log
    # The application's connections went through pgbouncer, and none was refused.
    assert "login attempt" in pgbouncer.log
    assert "unsupported startup parameter" not in pgbouncer.log


def run_with_app_settings(env: dict[str, str], code: str) -> str:
    """Run `code` in a Django process with the application's settings and `env`; its output."""
    full = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.jobs.worker_settings",
        **env,
    }
    full.pop("DATABASE_URL", None)
    script = "import django\ndjango.setup()\nfrom django.db import connection\n" + code
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_role_timeouts_bound_statements_and_lock_waits_through_pgbouncer(
    pgbouncer, role_timeouts, redis_url, redis_namespace
):
    env = app_env(pgbouncer, redis_url, redis_namespace)
    out = run_with_app_settings(
        env,
        "from django.db import OperationalError\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SHOW lock_timeout')\n"
        "    print('lock_timeout', cursor.fetchone()[0])\n"
        "    cursor.execute('SHOW statement_timeout')\n"
        "    print('statement_timeout', cursor.fetchone()[0])\n"
        "    try:\n"
        "        cursor.execute('SELECT pg_sleep(30)')\n"
        "        print('not cancelled')\n"
        "    except OperationalError as exc:\n"
        "        print('cancelled:', exc)\n"
        "    cursor.execute('SELECT 1')\n"  # the connection is still usable afterwards
        "    print('then', cursor.fetchone()[0])\n",
    )
    assert f"lock_timeout {LOCK_TIMEOUT}" in out
    assert f"statement_timeout {STATEMENT_TIMEOUT}" in out
    assert "cancelled: canceling statement due to statement timeout" in out
    assert "then 1" in out

    # A lock wait through pgbouncer ends at the lock timeout (this test holds the lock directly).
    with psycopg.connect(pgbouncer.direct_url) as holder:
        holder.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
        try:
            out = run_with_app_settings(
                env,
                "from django.db import OperationalError\n"
                "with connection.cursor() as cursor:\n"
                "    try:\n"
                "        cursor.execute('SELECT count(*) FROM customers')\n"
                "        print('not cancelled')\n"
                "    except OperationalError as exc:\n"
                "        print('cancelled:', exc)\n",
            )
        finally:
            holder.rollback()
    assert "cancelled: canceling statement due to lock timeout" in out


def test_a_zero_timeout_sends_no_startup_option(monkeypatch):
    """pgbouncer refuses a connection that carries `options`: with both bounds 0 none is sent;
    with one, only that one."""
    url = "postgres://duka@db.example:5432/duka"
    monkeypatch.setattr(base, "DATABASE_LOCK_TIMEOUT_MS", 0)
    monkeypatch.setattr(base, "DATABASE_STATEMENT_TIMEOUT_MS", 0)
    assert "options" not in base._database(url)["OPTIONS"]
    monkeypatch.setattr(base, "DATABASE_STATEMENT_TIMEOUT_MS", 15_000)
    assert base._database(url)["OPTIONS"]["options"] == "-c statement_timeout=15000"
    monkeypatch.setattr(base, "DATABASE_LOCK_TIMEOUT_MS", 5_000)
    assert base._database(url)["OPTIONS"]["options"] == (
        "-c lock_timeout=5000 -c statement_timeout=15000"
    )

"""Reads from a real hot standby (pg_basebackup -R of the test cluster) with read-your-writes.

Replay is paused where a test needs the replica certainly behind, so no assertion races the
clock; waits for convergence are bounded.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from django.test import Client

from backend.replicas import routing
from tests.fixtures.auth import bearer, builtin_token

pytestmark = pytest.mark.django_db(transaction=True)
SCOPES = ("customers:read", "customers:write", "orders:read", "orders:write")


def headers(sub: str) -> dict[str, str]:
    return bearer(builtin_token(*SCOPES, sub=sub))


def new_customer(client: Client, sub: str) -> dict[str, Any]:
    code = "R" + uuid.uuid4().hex[:12]
    response = client.post(
        "/api/v1/customers/",
        {"name": "Replica Test", "code": code, "phone_number": "0712 345 678"},
        content_type="application/json",
        **headers(sub),
    )
    assert response.status_code == 201, response.content
    return response.json()


def codes(client: Client, sub: str, code: str) -> list[str]:
    response = client.get(f"/api/v1/customers/?code={code}", **headers(sub))
    assert response.status_code == 200, response.content
    return [item["code"] for item in response.json()["items"]]


def wait_until(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
        routing.monitor.reset()  # probe afresh


def test_own_writes_are_read_back_while_others_read_the_lagging_replica(read_replica):
    client = Client()
    read_replica.wait_caught_up()
    read_replica.pause()

    customer = new_customer(client, "alice")

    # Alice reads her write at once (from the primary: the replica has not replayed it).
    response = client.get(f"/api/v1/customers/{customer['id']}/", **headers("alice"))
    assert response.status_code == 200
    assert codes(client, "alice", customer["code"]) == [customer["code"]]
    # Bob reads the replica, which is certainly behind: replay is paused. (On a loaded machine a
    # probe may have timed out and sent reads to the primary for a while: probe afresh first.)
    wait_until(lambda: routing.monitor.status().up)
    assert codes(client, "bob", customer["code"]) == []

    read_replica.resume()
    wait_until(lambda: codes(client, "bob", customer["code"]) == [customer["code"]])


def test_a_read_by_id_that_misses_on_the_lagging_replica_is_asked_on_the_primary(read_replica):
    """Someone told about a new resource (a webhook receiver, another client) reads it at once;
    a 404 is the primary's answer, never the lagging replica's."""
    client = Client()
    read_replica.wait_caught_up()
    read_replica.pause()
    customer = new_customer(client, "gina")
    order = client.post(
        "/api/v1/orders/",
        {"customer_id": customer["id"], "item": "Widget", "amount": "12.50"},
        content_type="application/json",
        **headers("gina"),
    )
    assert order.status_code == 201, order.content
    wait_until(lambda: routing.monitor.status().up)
    assert codes(client, "hank", customer["code"]) == []  # hank reads the replica: behind

    got = client.get(f"/api/v1/customers/{customer['id']}/", **headers("hank"))
    assert got.status_code == 200
    assert got.json()["code"] == customer["code"]
    got = client.get(f"/api/v1/orders/{order.json()['id']}/", **headers("hank"))
    assert got.status_code == 200
    assert client.get("/api/v1/orders/999999999/", **headers("hank")).status_code == 404
    read_replica.resume()


def test_once_the_replica_has_replayed_the_write_the_writer_reads_it_there(read_replica):
    client = Client()
    customer = new_customer(client, "carol")
    read_replica.wait_caught_up()
    routing.monitor.reset()
    assert codes(client, "carol", customer["code"]) == [customer["code"]]

    # Proof that this read came from the replica: with replay paused and a newer write by
    # someone else, carol's reads still go there (her own last write is replayed).
    read_replica.pause()
    other = new_customer(client, "dave")
    routing.monitor.reset()
    wait_until(lambda: routing.monitor.status().up)
    assert codes(client, "carol", other["code"]) == []
    assert codes(client, "dave", other["code"]) == [other["code"]]


def test_a_stopped_replica_sends_reads_to_the_primary_and_readyz_stays_green(read_replica):
    client = Client()
    customer = new_customer(client, "erin")
    read_replica.wait_caught_up()
    assert codes(client, "frank", customer["code"]) == [customer["code"]]  # connection warm

    read_replica.stop()
    later = new_customer(client, "erin")
    assert codes(client, "frank", later["code"]) == [later["code"]]
    assert client.get(f"/api/v1/customers/{later['id']}/", **headers("frank")).status_code == 200
    assert client.get("/readyz").status_code == 200
    assert routing.monitor.status().up is False

    read_replica.start()
    routing.monitor.reset()
    wait_until(lambda: routing.monitor.status().up)


def test_a_replica_lagging_beyond_the_limit_is_not_read(read_replica, settings):
    client = Client()
    read_replica.wait_caught_up()
    read_replica.pause()
    customer = new_customer(client, "grace")
    settings.DATABASE_READ_MAX_LAG_S = 1

    # Paused, the replica's lag only grows: wait until it is past the limit...
    wait_until(lambda: routing.monitor.status().lag_seconds > 1)
    # ...and then everyone reads the primary, so even another caller sees the write.
    assert codes(client, "heidi", customer["code"]) == [customer["code"]]


def test_the_lag_gauge_is_exported(read_replica, client):
    read_replica.wait_caught_up()
    routing.monitor.reset()
    routing.monitor.status()
    text = client.get("/metrics").content.decode()
    lines = [line for line in text.splitlines() if line.startswith("duka_replica_lag_seconds ")]
    assert len(lines) == 1
    assert float(lines[0].split()[1]) >= 0

    read_replica.stop()
    routing.monitor.reset()
    assert routing.monitor.status().up is False
    text = client.get("/metrics").content.decode()
    assert "duka_replica_lag_seconds +Inf" in text


def test_reads_inside_a_transaction_stay_on_the_primary(read_replica):
    from django.db import transaction

    read_replica.wait_caught_up()
    routing.monitor.reset()
    assert routing.read_alias() == routing.READ_ALIAS
    with transaction.atomic():
        assert routing.read_alias() == "default"


def test_without_a_replica_everything_reads_the_primary():
    assert not routing.configured()
    assert routing.read_alias() == "default"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0/0", 0), ("0/16B3748", 0x16B3748), ("16/B374D848", (0x16 << 32) | 0xB374D848)],
)
def test_parse_lsn_orders_like_the_lsn(text, expected):
    assert routing.parse_lsn(text) == expected

"""Replica lag after a quiet spell, on a real hot standby (tests/fixtures/replica.py).

Lag is measured from the standby's last replayed commit. Without commits for longer than
DATABASE_READ_MAX_LAG_S, the first write afterwards made the replica look that far behind until
it was replayed, and reads went to the primary. The worker's dispatcher now commits a heartbeat
on the primary every second while a replica is configured, so the last replayed commit is never
much older than the real lag. (On a cluster that other clients keep busy the quiet spell is not
quiet: this test then passes with or without the heartbeat; CI's cluster is quiet.)
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.test import Client

from backend.replicas import routing
from tests.fixtures.auth import bearer, builtin_token

pytestmark = pytest.mark.django_db(transaction=True)

MAX_LAG_SECONDS = 4  # the standby applies each commit 1 s late, heartbeats come each second
QUIET_SECONDS = MAX_LAG_SECONDS + 1.5


def test_after_a_quiet_spell_a_read_still_goes_to_the_replica(read_replica, settings, stub_worker):
    settings.DATABASE_READ_MAX_LAG_S = MAX_LAG_SECONDS
    read_replica.wait_caught_up()
    time.sleep(QUIET_SECONDS)  # nothing written by the application meanwhile

    response = Client().post(
        "/api/v1/customers/",
        {"name": "Quiet", "code": "Q" + uuid.uuid4().hex[:12], "phone_number": "0712 345 678"},
        content_type="application/json",
        **bearer(builtin_token("customers:write", sub="quiet-writer")),
    )
    assert response.status_code == 201, response.content
    routing.monitor.reset()  # probe now, while the standby has not replayed the write yet

    status = routing.monitor.status()
    assert status.up
    assert status.lag_seconds <= MAX_LAG_SECONDS, status
    assert routing.read_alias() == routing.READ_ALIAS  # another caller reads the replica

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connections

from backend.replicas import routing
from tests.fixtures.replica import Standby


@pytest.fixture
def read_replica(standby: Standby, settings: Any, django_db_blocker: Any) -> Iterator[Standby]:
    """The standby as the `read` alias (as DATABASE_READ_URL would make it) for one test.

    The test database itself is replicated, so the alias names it on the standby's port.
    Writes must really commit to reach the standby: use it with `django_db(transaction=True)`.
    """
    default = connections.settings["default"]
    raw = {**default, "HOST": standby.host, "PORT": standby.port, "TEST": {}}
    raw["OPTIONS"] = {**default.get("OPTIONS", {}), "connect_timeout": 10}
    connections.settings[routing.READ_ALIAS] = connections.configure_settings(
        {"default": default, routing.READ_ALIAS: raw}
    )[routing.READ_ALIAS]
    # Django's test case refuses connections to aliases it did not know when it was set up, and
    # `read` is added by the test itself: this connection gets the unpatched method.
    replica = connections[routing.READ_ALIAS]
    real = django_db_blocker._real_ensure_connection
    replica.ensure_connection = types.MethodType(real, replica)  # type: ignore[method-assign]
    settings.DATABASE_READ_MAX_LAG_S = 3600  # only pauses and stops decide in these tests
    routing.monitor.reset()
    standby.resume()
    try:
        yield standby
    finally:
        if not standby.running():
            standby.start()
        standby.resume()
        replica.close()
        del connections[routing.READ_ALIAS]
        del connections.settings[routing.READ_ALIAS]
        routing.monitor.reset()

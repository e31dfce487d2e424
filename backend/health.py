"""Liveness and readiness endpoints for orchestrators and load balancers."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client.core import GaugeMetricFamily, Metric

from backend.dbconnections import close_broken
from backend.problems import problem_response

logger = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 2
# How old the last broker probe may be before a /readyz call starts another one (in the
# background: the answer never waits for it).
BROKER_PROBE_INTERVAL_SECONDS = 10


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers; no I/O, so it never fails because a dependency is down."""
    return JsonResponse({"status": "ok"})


def _database() -> None:
    try:
        # In a transaction: SET LOCAL outside one is a no-op, and the check would wait up to the
        # connection's own statement timeout.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {CHECK_TIMEOUT_SECONDS * 1000}")
            cursor.execute("SELECT 1")
    except Exception:
        close_broken()  # the next probe connects afresh: ready again once the database is
        raise


def _ping(url: str) -> None:
    client = redis.Redis.from_url(
        url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()


def _state(name: str, check: Callable[[], None]) -> str:
    try:
        check()
    except Exception as exc:  # any failure means "down", never a 500
        logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
        return "down"
    return "ok"


class BrokerProbe:
    """The broker's last known state ("ok", "down", or "unknown" before the first probe ends),
    read without any I/O. A stale state starts one PING in a daemon thread (at most one at a
    time per process); the `duka_broker_up` collector's scrape-time PING refreshes it too.

    Contract §5: `/readyz` makes no broker call, so a Redis that accepts connections and never
    answers cannot hold a readiness probe for its socket timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._url: str | None = None
        self._state = "unknown"
        self._checked_at = float("-inf")
        self._probing_pid: int | None = None  # a probe of a parent process does not run here

    def state(self) -> str:
        url = settings.REDIS_URL
        if not url:
            return "ok"  # in-process broker: up whenever this process is
        with self._lock:
            if url != self._url:
                self._url, self._state, self._checked_at = url, "unknown", float("-inf")
            stale = time.monotonic() - self._checked_at >= BROKER_PROBE_INTERVAL_SECONDS
            if stale and self._probing_pid != os.getpid():
                self._probing_pid = os.getpid()
                threading.Thread(
                    target=self._probe, args=(url,), name="broker-probe", daemon=True
                ).start()
            return self._state

    def record(self, url: str, state: str) -> None:
        """Keep the result of a PING of `url` made elsewhere (the metrics scrape)."""
        with self._lock:
            self._url, self._state, self._checked_at = url, state, time.monotonic()

    def _probe(self, url: str) -> None:
        state = "down"
        try:
            state = _state("broker", lambda: _ping(url))
        finally:
            with self._lock:
                self._probing_pid = None
                if url == self._url:  # REDIS_URL unchanged meanwhile
                    self._state, self._checked_at = state, time.monotonic()


broker_probe = BrokerProbe()

# Readiness depends on these only (contract §5): without the database nothing can be served.
REQUIRED: dict[str, Callable[[], None]] = {"database": _database}


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """200 while the database answers within a short timeout, 503 naming the database otherwise.
    The broker's last known state is in the body; it is never probed here (see BrokerProbe)."""
    required = {name: _state(name, check) for name, check in REQUIRED.items()}
    down = [name for name, state in required.items() if state != "ok"]
    if down:
        response = problem_response(
            503,
            f"Not ready: {', '.join(down)} unreachable.",
            code="not-ready",
            title="Service not ready",
        )
        response["Retry-After"] = "5"
        return response
    broker = broker_probe.state()
    status = "ready" if broker == "ok" else "degraded"
    return JsonResponse({"status": status, "checks": {**required, "broker": broker}})


class BrokerUpCollector:
    """`duka_broker_up` on the web's /metrics: 1 when the broker answers a PING at scrape time,
    0 otherwise (the in-process broker of the quick-start is always up). The scrape's result
    is also the state `/readyz` reports."""

    def collect(self) -> list[Metric]:
        url = settings.REDIS_URL
        up = True
        if url:
            state = _state("broker", lambda: _ping(url))
            broker_probe.record(url, state)
            up = state == "ok"
        return [
            GaugeMetricFamily(
                "duka_broker_up",
                "1 when the web reaches the Dramatiq broker (Redis), 0 when it does not.",
                value=1 if up else 0,
            )
        ]

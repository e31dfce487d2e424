"""Liveness and readiness endpoints for orchestrators and load balancers."""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client.core import GaugeMetricFamily, Metric

from backend.dbconnections import close_broken
from backend.problems import problem_response

logger = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 2


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers; no I/O, so it never fails because a dependency is down."""
    return JsonResponse({"status": "ok"})


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = {CHECK_TIMEOUT_SECONDS * 1000}")
            cursor.execute("SELECT 1")
    except Exception:
        close_broken()  # the next probe connects afresh: ready again once the database is
        raise


def _broker() -> None:
    if not settings.REDIS_URL:
        return  # in-process broker: up whenever this process is
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()


# Readiness depends on these only (contract §5): without the database nothing can be served.
REQUIRED = {"database": _database}
# Reported, never failing readiness: orders are accepted (kept in the outbox) while it is down,
# so a broker outage must not take every web pod out of the Service.
REPORTED = {"broker": _broker}


def _state(name: str, check: object) -> str:
    try:
        check()  # type: ignore[operator]
    except Exception as exc:  # any failure means "down", never a 500
        logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
        return "down"
    return "ok"


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """200 while the database answers within a short timeout (the broker's state is in the body);
    503 naming the database otherwise."""
    required = {name: _state(name, check) for name, check in REQUIRED.items()}
    reported = {name: _state(name, check) for name, check in REPORTED.items()}
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
    status = "ready" if all(state == "ok" for state in reported.values()) else "degraded"
    return JsonResponse({"status": status, "checks": {**required, **reported}})


class BrokerUpCollector:
    """`duka_broker_up` on the web's /metrics: 1 when the broker answers a PING at scrape time,
    0 otherwise (the in-process broker of the quick-start is always up)."""

    def collect(self) -> list[Metric]:
        up = _state("broker", _broker) == "ok"
        return [
            GaugeMetricFamily(
                "duka_broker_up",
                "1 when the web reaches the Dramatiq broker (Redis), 0 when it does not.",
                value=1 if up else 0,
            )
        ]

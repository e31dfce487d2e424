"""Liveness and readiness endpoints for orchestrators and load balancers."""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from backend.api.problems import problem_response

logger = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 2


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers; no I/O, so it never fails because a dependency is down."""
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SET LOCAL statement_timeout = {CHECK_TIMEOUT_SECONDS * 1000}")
        cursor.execute("SELECT 1")


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


CHECKS = {"database": _database, "broker": _broker}


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """Ready when the database and the broker answer within a short timeout; else 503 naming them."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure means "not ready", never a 500
            logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
            results[name] = "down"
    down = [name for name, state in results.items() if state != "ok"]
    if down:
        response = problem_response(
            503,
            f"Not ready: {', '.join(down)} unreachable.",
            code="not-ready",
            title="Service not ready",
        )
        response["Retry-After"] = "5"
        return response
    return JsonResponse({"status": "ready", "checks": results})

"""Request id and the per-request log line.

Placed near the top of MIDDLEWARE so that the line reports the status the client really got
(after every other middleware) and every log line written while serving carries the id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from backend.observability.context import (
    REQUEST_ID_HEADER,
    accepted_request_id,
    bind_request_id,
    new_request_id,
    unbind_request_id,
)
from backend.observability.routes import operation_name

logger = logging.getLogger("duka.request")

_REQUEST_ID_META = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")
# Probes and scrapes arrive every few seconds; they are logged at DEBUG unless they fail.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestLogMiddleware:
    """Takes the client's `X-Request-ID` when it is sane (else makes one), binds it for the
    request's log lines and the jobs it enqueues, echoes it in the response and logs one line:
    method, path, route, view, status, duration_ms, request_id and the token's subject."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        # META, not request.headers: that mapping of every header is built on first use.
        request_id = accepted_request_id(request.META.get(_REQUEST_ID_META)) or new_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        token = bind_request_id(request_id)
        started = time.perf_counter()
        try:
            try:
                response = self.get_response(request)
            except BaseException:
                # Django turns exceptions into responses below us; this is the last resort.
                log_request(request, status=500, started=started)
                raise
            response[REQUEST_ID_HEADER] = request_id
            log_request(request, status=response.status_code, started=started)
            return response
        finally:
            unbind_request_id(token)


def log_request(request: HttpRequest, *, status: int, started: float) -> None:
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    if status >= 500:
        level = logging.ERROR
    elif request.path in QUIET_PATHS and status < 400:
        level = logging.DEBUG
    else:
        level = logging.INFO
    if not logger.isEnabledFor(level):
        return
    match = getattr(request, "resolver_match", None)
    principal = getattr(request, "auth", None)
    fields = {
        "event": "request",
        "method": request.method,
        # The path without its query string: a query may carry a credential (`?token=`).
        "path": request.path,
        "route": f"/{match.route}" if match is not None else None,
        "view": operation_name(request),
        "status": status,
        "duration_ms": duration_ms,
        "subject": getattr(principal, "subject", None),
        "client_id": getattr(principal, "client_id", None),
    }
    logger.log(
        level, "%s %s %s %.1fms", request.method, request.path, status, duration_ms, extra=fields
    )

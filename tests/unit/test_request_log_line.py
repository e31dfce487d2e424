"""The request line as the deployed logging configuration writes it: a standard StreamHandler
with the phone mask, the request-context filter and the JSON formatter (settings' LOGGING).
Field order, levels and redaction are pinned byte for byte."""

from __future__ import annotations

import io
import json
import logging
import time
from types import SimpleNamespace

import pytest

from backend.observability import middleware
from backend.observability.context import bind_request_id, unbind_request_id
from backend.observability.logging import (
    JsonFormatter,
    MaskPhoneNumbersFilter,
    RequestContextFilter,
)


@pytest.fixture
def deployed(monkeypatch) -> logging.StreamHandler:
    """One JSON handler on a private root, so pytest's capture handlers stay out of it."""
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(MaskPhoneNumbersFilter())
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.RootLogger(logging.INFO)
    root.handlers = [handler]
    logger = logging.Logger("duka.request", logging.DEBUG)
    logger.parent = root
    monkeypatch.setattr(middleware, "logger", logger)
    return handler


def _request(path: str, method: str, principal: object) -> SimpleNamespace:
    match = SimpleNamespace(route="api/v1/orders/<id:order_id>/", func=len, view_name="v\u00e9")
    return SimpleNamespace(path=path, method=method, resolver_match=match, auth=principal)


PRINCIPAL = SimpleNamespace(subject="svc-1", client_id="client-1")
# path, method, principal, status, bound request id -> level, the path as logged
CASES = [
    (("/api/v1/orders/5/", "GET", PRINCIPAL, 200, "abc"), ("info", "/api/v1/orders/5/")),
    (("/api/v1/orders/", "POST", None, 201, None), ("info", "/api/v1/orders/")),
    (
        ("/api/v1/customers/+254712345678/", "GET", PRINCIPAL, 404, "r-1"),
        ("info", "/api/v1/customers/*********678/"),
    ),
    (
        ("/api/v1/token=abcdef0123456789/", "BREW", None, 405, "-"),
        ("info", "/api/v1/token=[redacted]"),
    ),
    (
        ("/api/v1/eyJhbGciOi.eyJzdWIi.c2ln/", "GET", PRINCIPAL, 401, "x"),
        ("info", "/api/v1/[redacted]/"),
    ),
    (
        (
            "/api/v1/caf\u00e9/\u017ftoken/",
            "GET",
            SimpleNamespace(subject="\u00e9", client_id=7),
            500,
            "y",
        ),
        ("error", "/api/v1/caf\u00e9/\u017ftoken/"),
    ),
    (("/healthz", "GET", None, 200, None), ("debug", "/healthz")),
    (("/readyz", "GET", None, 503, "q"), ("error", "/readyz")),
]


@pytest.mark.parametrize(("case", "expected"), CASES)
def test_one_line_with_every_field_in_order_and_redacted(deployed, monkeypatch, case, expected):
    path, method, principal, status, request_id = case
    level, logged_path = expected
    monkeypatch.setattr(time, "time", lambda: 1_764_000_000.123456)
    monkeypatch.setattr(time, "perf_counter", lambda: 100.0)
    token = bind_request_id(request_id)
    try:
        middleware.log_request(_request(path, method, principal), status=status, started=99.99)
    finally:
        unbind_request_id(token)
    line = {
        "ts": "2025-11-24T16:00:00.123Z",
        "level": level,
        "logger": "duka.request",
        "message": f"{method} {logged_path} {status} 10.0ms",
        **({"request_id": request_id} if request_id not in (None, "-") else {}),
        "event": "request",
        "method": method,
        "path": logged_path,
        "route": "/api/v1/orders/<id:order_id>/",
        "view": "v\u00e9",
        "status": status,
        "duration_ms": 10.0,
        "subject": getattr(principal, "subject", None),
        "client_id": getattr(principal, "client_id", None),
    }
    assert deployed.stream.getvalue() == json.dumps(line, ensure_ascii=False) + "\n"

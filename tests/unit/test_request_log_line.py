"""The request line written without a LogRecord (`json_line`) is the line the configured JSON
handler writes for the record, byte for byte, and it is used only when that handler is the one
place the record could go."""

from __future__ import annotations

import io
import logging
import time
from types import SimpleNamespace

import pytest

from backend.logs import MaskPhoneNumbersFilter
from backend.observability import logging as obs_logging
from backend.observability import middleware
from backend.observability.context import bind_request_id, unbind_request_id
from backend.observability.logging import (
    JsonFormatter,
    LineHandler,
    RequestContextFilter,
    TextFormatter,
    sole_json_handler,
)


def _handler() -> LineHandler:
    handler = LineHandler(io.StringIO())
    handler.addFilter(MaskPhoneNumbersFilter())
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(JsonFormatter())
    return handler


@pytest.fixture
def deployed(monkeypatch) -> LineHandler:
    """The logging configuration as deployed: one JSON LineHandler on the root, nothing else; a
    private hierarchy, so pytest's capture handlers on the real root stay out of it."""
    handler = _handler()
    root = logging.RootLogger(logging.INFO)
    root.handlers = [handler]
    logger = logging.Logger("duka.request", logging.DEBUG)
    logger.parent = root
    monkeypatch.setattr(middleware, "logger", logger)
    return handler


def _request(path: str, method: str = "GET", principal: object = None) -> SimpleNamespace:
    match = SimpleNamespace(route="api/v1/orders/<id:order_id>/", func=len, view_name="v\u00e9")
    return SimpleNamespace(path=path, method=method, resolver_match=match, auth=principal)


PRINCIPAL = SimpleNamespace(subject="svc-1", client_id="client-1")
CASES = [
    ("/api/v1/orders/5/", "GET", PRINCIPAL, 200, "abc"),
    ("/api/v1/orders/", "POST", None, 201, None),
    ("/api/v1/customers/+254712345678/", "GET", PRINCIPAL, 404, "r-1"),
    ("/api/v1/token=abcdef0123456789/", "BREW", None, 405, "-"),
    ("/api/v1/eyJhbGciOi.eyJzdWIi.c2ln/", "GET", PRINCIPAL, 401, "x"),
    (
        "/api/v1/caf\u00e9/\u017ftoken/",
        "GET",
        SimpleNamespace(subject="\u00e9", client_id=7),
        500,
        "y",
    ),
    ("/healthz", "GET", None, 200, None),
    ("/readyz", "GET", None, 503, "q"),
]


@pytest.mark.parametrize(("path", "method", "principal", "status", "request_id"), CASES)
def test_the_fast_line_is_the_handlers_line(
    deployed, monkeypatch, path, method, principal, status, request_id
):
    monkeypatch.setattr(time, "time", lambda: 1_764_000_000.123456)
    monkeypatch.setattr(time, "perf_counter", lambda: 100.0)
    assert sole_json_handler(middleware.logger, logging.ERROR) is deployed  # the fast path runs
    request = _request(path, method, principal)
    token = bind_request_id(request_id)
    try:
        middleware.log_request(request, status=status, started=99.99)
        fast = deployed.stream.getvalue()
        deployed.stream.seek(0)
        deployed.stream.truncate()
        monkeypatch.setattr(middleware, "sole_json_handler", lambda logger, level: None)
        middleware.log_request(request, status=status, started=99.99)
        slow = deployed.stream.getvalue()
    finally:
        unbind_request_id(token)
    assert fast == slow
    assert fast.count("\n") == 1


def test_any_other_configuration_takes_the_record_path(deployed, monkeypatch):
    logger = middleware.logger
    assert sole_json_handler(logger, logging.INFO) is deployed
    other = logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(logger.parent, "handlers", [deployed, other])
    assert sole_json_handler(logger, logging.INFO) is None
    monkeypatch.setattr(logger.parent, "handlers", [deployed])
    monkeypatch.setattr(logger, "handlers", [other])
    assert sole_json_handler(logger, logging.INFO) is None
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(deployed, "formatter", TextFormatter())
    assert sole_json_handler(logger, logging.INFO) is None
    monkeypatch.setattr(deployed, "formatter", JsonFormatter())
    monkeypatch.setattr(deployed, "level", logging.ERROR)
    assert sole_json_handler(logger, logging.INFO) is None
    monkeypatch.setattr(deployed, "level", logging.NOTSET)
    monkeypatch.setattr(logging.Logger, "callHandlers", lambda self, record: None)
    assert sole_json_handler(logger, logging.INFO) is None
    monkeypatch.setattr(logging.Logger, "callHandlers", obs_logging._CALL_HANDLERS)
    assert sole_json_handler(logger, logging.INFO) is deployed

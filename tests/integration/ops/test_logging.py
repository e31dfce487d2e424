"""Structured logs: one JSON line per request and per job, the request id from the request into
its SMS job, and no token, key or phone number in any line."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import dramatiq
import pytest

from backend.observability.logging import JsonFormatter, TextFormatter, redact
from tests.fixtures.auth import API_SCOPES, builtin_token
from tests.fixtures.broker import ROOT
from tests.integration.jobs.conftest import wait_for_sms_status


class Captured:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self, **match: object) -> list[dict]:
        """Parsed JSON lines whose fields include `match`."""
        parsed = [json.loads(line) for line in self.text.splitlines() if line.strip()]
        return [p for p in parsed if all(p.get(k) == v for k, v in match.items())]


@pytest.fixture
def log_output() -> Iterator[Captured]:
    """What the configured console handler writes (filters and JSON formatter as deployed)."""
    [handler] = [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)]
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    previous = handler.setStream(stream)
    request_logger = logging.getLogger("duka.request")
    level = request_logger.level
    request_logger.setLevel(logging.DEBUG)
    try:
        yield Captured(stream)
    finally:
        request_logger.setLevel(level)
        handler.setStream(previous)


@pytest.mark.django_db
def test_one_json_line_per_request_with_its_fields(client, log_output):
    token = builtin_token(*API_SCOPES, sub="alice")
    response = client.get(
        "/api/v1/orders/?limit=5",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_X_REQUEST_ID="req-42.abc",
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-42.abc"
    [line] = log_output.lines(event="request")
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/orders/"
    assert line["route"] == "/api/v1/orders/"
    assert line["view"] == "api-v1:list_orders"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["request_id"] == "req-42.abc"
    assert line["subject"] == "alice"
    assert line["logger"] == "duka.request"
    assert line["level"] == "info"
    assert line["ts"].endswith("Z")
    assert token not in log_output.text
    assert "limit=5" not in log_output.text  # query strings may carry credentials


@pytest.mark.django_db
def test_refused_token_is_logged_without_the_token_or_a_subject(client, log_output):
    forged = builtin_token(*API_SCOPES, sub="mallory")[:-8] + "AAAAAAAA"
    response = client.get("/api/v1/orders/", HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert response.status_code == 401
    [line] = log_output.lines(event="request")
    assert line["status"] == 401
    assert line["subject"] is None
    assert forged not in log_output.text
    assert forged.split(".")[1] not in log_output.text


@pytest.mark.parametrize(
    "given",
    ["has space", "new\nline", "x" * 129, 'quote"d', "", "-leading-dash"],
)
def test_insane_request_ids_are_replaced(client, given, log_output):
    response = client.get("/healthz", HTTP_X_REQUEST_ID=given)
    generated = response["X-Request-ID"]
    assert generated != given
    assert len(generated) == 32 and int(generated, 16) >= 0
    [line] = log_output.lines(event="request")
    assert line["request_id"] == generated
    assert line["level"] == "debug"  # probes are quiet unless they fail


def test_each_request_gets_its_own_id(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert first != second


@pytest.mark.django_db(transaction=True)
def test_request_id_travels_into_the_sms_job(
    client, all_scopes_headers, gateway_settings, stub_worker, log_output
):
    customer = client.post(
        "/api/v1/customers/",
        {"name": "Jane", "code": "JANE-LOG", "phone_number": "+254712345678"},
        content_type="application/json",
        **all_scopes_headers,
    ).json()
    order = client.post(
        "/api/v1/orders/",
        {"customer_id": customer["id"], "item": "Widget", "amount": "12.00"},
        content_type="application/json",
        HTTP_X_REQUEST_ID="order-req-1",
        **all_scopes_headers,
    )
    assert order.status_code == 201
    wait_for_sms_status(order.json()["id"], "sent")
    stub_worker.broker.join("sms", timeout=10_000)
    stub_worker.join()

    [job] = log_output.lines(event="job")
    assert job["request_id"] == "order-req-1"
    assert job["actor"] == "send_sms_notification"
    assert job["queue"] == "sms"
    assert job["outcome"] == "sent"
    assert job["message_id"]
    assert job["retries"] == 0
    assert job["duration_ms"] >= 0
    # The actor's own lines carry the id too.
    sent = [
        line for line in log_output.lines(logger="backend.jobs.sms") if "sent" in line["message"]
    ]
    assert sent and all(line["request_id"] == "order-req-1" for line in sent)
    assert gateway_settings.api_key not in log_output.text
    assert "+254712345678" not in log_output.text
    assert all_scopes_headers["HTTP_AUTHORIZATION"].split()[1] not in log_output.text


def test_failing_job_is_logged_as_an_error_outcome(stub_broker, stub_worker, log_output):
    def explode() -> None:
        raise ValueError("boom for +254700111222")

    actor = dramatiq.actor(
        explode, broker=stub_broker, actor_name="log_test_explode", max_retries=0
    )
    actor.send_with_options(request_id="job-req-7")
    stub_broker.join(actor.queue_name, fail_fast=False, timeout=10_000)
    stub_worker.join()

    [job] = log_output.lines(event="job", actor="log_test_explode")
    assert job["outcome"] == "error"
    assert job["error_type"] == "ValueError"
    assert job["level"] == "warning"
    assert job["request_id"] == "job-req-7"
    assert "+254700111222" not in log_output.text


def test_secrets_are_redacted_from_messages_fields_and_tracebacks(log_output):
    logger = logging.getLogger("duka.test")
    jwt_like = builtin_token("orders:read")
    logger.warning("header was Bearer %s", "opaque-token-1234567890")
    logger.warning("jwt %s in text", jwt_like)
    logger.warning("callback /api/v1/sms/delivery-reports/?token=s3cr3t-callback&x=1")
    logger.warning("AT said apiKey: at-key-0987654321 for +254 712 345 678")
    try:
        raise RuntimeError("cannot reach 0712345678 with Authorization Bearer abcdefghijklmnop")
    except RuntimeError:
        logger.exception("failed", extra={"detail": {"to": "+254712345678", "token": "x"}})
    text = log_output.text
    for secret in (
        "opaque-token-1234567890",
        jwt_like,
        "s3cr3t-callback",
        "at-key-0987654321",
        "712 345",
        "0712345678",
        "+254712345678",
        "abcdefghijklmnop",
    ):
        assert secret not in text, secret
    [failed] = log_output.lines(message="failed")
    assert failed["error_type"] == "RuntimeError"
    assert "Traceback" in failed["exception"]
    assert failed["detail"]["to"].endswith("678")


def test_redact_leaves_ordinary_text_alone():
    text = "order #1042 for customer 17: 3 items, KES 1500.00 (bearer token refused)"
    assert redact(text) == text


def test_text_format_for_development():
    record = logging.LogRecord(
        "duka.x", logging.INFO, __file__, 1, "hello %s", ("Bearer abcdefghijklmnopq",), None
    )
    line = TextFormatter().format(record)
    assert line.endswith("INFO duka.x [-] hello Bearer [redacted]")


@pytest.mark.parametrize(("value", "ok"), [("text", True), ("JSON", True), ("xml", False)])
def test_log_format_setting(value, ok):
    env = {**os.environ, "LOG_FORMAT": value, "DJANGO_SETTINGS_MODULE": "backend.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode == 0) is ok, result.stderr.decode()[-2000:]
    if not ok:
        assert b"LOG_FORMAT must be json or text" in result.stderr


def test_request_line_fields_are_redacted_where_a_client_controls_them(client, log_output):
    # A path and a method come from the client: a phone number in either is masked.
    response = client.generic("GETX", "/api/v1/customers/+254712345678/")
    assert response.status_code in {400, 404, 405}
    [line] = log_output.lines(event="request")
    assert "+254712345678" not in log_output.text
    assert line["path"].endswith("678/") and "*" in line["path"]
    assert line["method"] == "GETX"
    assert line["status"] == response.status_code

"""The worker's `:$METRICS_PORT/metrics` on a real `dramatiq backend.jobs.worker` run, and its
per-run metric directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from backend.observability.rundir import process_start, run_directory, run_name
from tests.factories import make_customer, make_order
from tests.integration.jobs.conftest import gateway_env, wait_for_sms_status
from tests.integration.jobs.test_redis_worker import scrape
from tests.integration.ops.test_metrics import promtool_check, sample


def job_lines(log: str) -> list[dict]:
    return [
        entry
        for entry in (json.loads(line) for line in log.splitlines() if line.startswith("{"))
        if entry.get("event") == "job"
    ]


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_worker_metrics_and_job_log_line(
    client, all_scopes_headers, redis_broker, worker_process, gateway
):
    worker = worker_process(env=gateway_env(gateway))
    customer = client.post(
        "/api/v1/customers/",
        {"name": "Jane", "code": "JANE", "phone_number": "+254712345678"},
        content_type="application/json",
        **all_scopes_headers,
    ).json()
    request_id = f"order-{uuid.uuid4().hex}"
    order = client.post(
        "/api/v1/orders/",
        {"customer_id": customer["id"], "item": "Widget", "amount": "15.00"},
        content_type="application/json",
        HTTP_X_REQUEST_ID=request_id,
        **all_scopes_headers,
    )
    assert order.status_code == 201
    assert order["X-Request-ID"] == request_id
    wait_for_sms_status(order.json()["id"], "sent")

    text = scrape(worker.metrics_port)
    assert sample(text, "duka_sms_notifications_total", status="sent") == 1
    assert sample(text, "duka_sms_notifications_total", status="failed") == 0
    assert sample(text, "duka_sms_send_seconds_count") == 1
    assert sample(text, "dramatiq_messages_total", actor_name="send_sms_notification") >= 1
    assert sample(text, "dramatiq_message_duration_seconds_count") >= 1
    assert "dramatiq_message_duration_milliseconds" not in text
    promtool_check(text)

    deadline = time.monotonic() + 10
    while not (lines := [e for e in job_lines(worker.log) if e.get("request_id") == request_id]):
        assert time.monotonic() < deadline, worker.log[-3000:]
        time.sleep(0.1)
    [line] = lines
    assert line["actor"] == "send_sms_notification"
    assert line["queue"] == "sms"
    assert line["outcome"] == "sent"
    assert line["message_id"]
    assert line["duration_ms"] >= 0
    assert line["level"] == "info"
    log = worker.log
    assert gateway.api_key not in log
    assert "+254712345678" not in log


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_new_worker_run_starts_its_counters_from_zero(redis_broker, worker_process, gateway):
    first = worker_process(env=gateway_env(gateway))
    order_id = make_order(make_customer())
    wait_for_sms_status(order_id, "sent")
    assert sample(scrape(first.metrics_port), "duka_sms_notifications_total", status="sent") == 1
    first.stop()

    second = worker_process(env=gateway_env(gateway))
    assert sample(scrape(second.metrics_port), "duka_sms_notifications_total", status="sent") == 0


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=30)
    return process.pid


def test_run_directory_is_fresh_for_each_run(tmp_path):
    me = os.getpid()
    parent = os.getppid()
    assert process_start(me) is not None
    # An earlier run whose CLI had our pid (pid 1 again after a container restart).
    reused = tmp_path / f"{me}-1"
    reused.mkdir()
    (reused / "counter_7.db").write_bytes(b"old")
    gone = tmp_path / f"{dead_pid()}-123"
    gone.mkdir()
    alive = tmp_path / run_name(parent)  # another run on this host, still going
    alive.mkdir()
    unrelated = tmp_path / "keep-me"
    unrelated.mkdir()

    path = run_directory(tmp_path, me)

    assert path == tmp_path / run_name(me)
    assert path.is_dir() and not list(path.iterdir())
    assert not reused.exists()
    assert not gone.exists()
    assert alive.exists()
    assert unrelated.exists()
    assert run_directory(tmp_path, me) == path  # every process of the run gets the same one

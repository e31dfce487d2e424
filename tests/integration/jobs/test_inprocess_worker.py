"""Quick start without Redis: the web process serves its in-memory broker from worker threads."""

from __future__ import annotations

import logging

import pytest

from backend.jobs import broker as jobs_broker
from backend.jobs.apps import serves_http
from tests.factories import make_customer, make_order
from tests.integration.jobs.conftest import wait_for_sms_status


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/app/.venv/bin/gunicorn", "-c", "backend/gunicorn.conf.py", "backend.wsgi"], True),
        (["/usr/lib/python3/site-packages/gunicorn/__main__.py", "backend.wsgi"], True),
        (["uvicorn", "backend.asgi:application"], True),
        (["manage.py", "runserver"], True),
        (["./manage.py", "quickstart", "--port", "8000"], True),
        (["manage.py", "migrate"], False),
        (["manage.py", "seed", "--customers", "10"], False),
        (["/app/.venv/bin/pytest", "tests"], False),
        (["/app/.venv/bin/dramatiq", "backend.jobs.worker"], False),
        ([], False),
    ],
)
def test_only_server_processes_start_the_inprocess_worker(argv, expected):
    assert serves_http(argv) is expected


@pytest.mark.django_db(transaction=True)
def test_inprocess_worker_delivers_to_the_console_backend(settings, caplog):
    settings.REDIS_URL = None
    settings.AFRICAS_TALKING_USERNAME = None
    settings.AFRICAS_TALKING_API_KEY = None
    with caplog.at_level(logging.INFO):
        assert jobs_broker.start_inprocess_worker() is True
        try:
            assert jobs_broker.start_inprocess_worker() is False  # once per process
            order_id = make_order(make_customer(name="Jane"), item="Widget", amount="1500.00")
            row = wait_for_sms_status(order_id, "sent")
        finally:
            jobs_broker.stop_inprocess_worker()

    assert row.gateway_message_id.startswith("console-")
    assert f"we received your order #{order_id}: Widget, KES 1500.00" in caplog.text


def test_inprocess_worker_is_not_started_when_redis_is_configured(settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"

    assert jobs_broker.start_inprocess_worker() is False

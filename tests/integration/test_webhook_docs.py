"""The receiver example of docs/webhooks.md, run as written: it accepts a real signed delivery
from the webhook actor and refuses a forged one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from backend.commands import webhook_endpoints
from backend.commands.models import WebhookDelivery
from backend.jobs.webhook_delivery import deliver
from tests.factories import make_customer
from tests.fixtures.broker import free_port

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def receiver_example() -> str:
    section = DOC.read_text().split("### Receiver example (Python)", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_documented_receiver_verifies_real_deliveries(settings, tmp_path):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    port = free_port()
    endpoint_id = webhook_endpoints.create_webhook_endpoint(
        webhook_endpoints.CreateWebhookEndpoint(
            owner="test-user",
            url=f"http://127.0.0.1:{port}/duka-events",
            events=["customer.created"],
        )
    )
    script = tmp_path / "receiver.py"
    script.write_text(receiver_example())
    env = {
        **os.environ,
        "DUKA_WEBHOOK_SECRET": webhook_endpoints.get_secret(endpoint_id),
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "receiver.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 20
        while True:  # until it listens
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            except urllib.error.HTTPError:
                break  # GET is not handled: 501, but it answers
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(log.read_text())
                time.sleep(0.1)

        forged = urllib.request.Request(
            f"http://127.0.0.1:{port}/duka-events",
            data=b'{"type":"customer.created"}',
            headers={
                "webhook-id": "msg_forged",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1,AAAA",
            },
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=5)
        assert refused.value.code == 400

        customer_id = make_customer(name="Jane")
        [row] = WebhookDelivery.objects.all()
        assert deliver(row.pk) == "delivered"
        row.refresh_from_db()
        row.status = "pending"  # a redelivery of the same event: acknowledged, not handled twice
        row.save()
        assert deliver(row.pk) == "delivered"

        deadline = time.monotonic() + 10
        while "customer.created" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = [line for line in log.read_text().splitlines() if line.startswith("customer.")]
        assert len(lines) == 1
        kind, data = lines[0].split(" ", 1)
        assert kind == "customer.created"
        assert json.loads(data)["id"] == customer_id
    finally:
        process.terminate()
        process.wait(timeout=10)

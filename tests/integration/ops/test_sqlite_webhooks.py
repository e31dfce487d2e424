"""Webhooks in the quick start (SQLite): endpoints through the API, event rows, publishing and
a signed delivery, as on PostgreSQL."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import base64, json, threading, django
django.setup()
from http.server import BaseHTTPRequestHandler, HTTPServer
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from standardwebhooks.webhooks import Webhook
from backend.commands import webhooks
from backend.commands.models import WebhookDelivery
from backend.issuer.clients import create_client
from backend.jobs.webhooks import deliver

got = []
class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        got.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
server = HTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()

scopes = "customers:write webhooks:manage"
cid, secret = create_client(name="t", scopes=scopes)
c = Client()
basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
token = c.post("/o/token/", {"grant_type": "client_credentials", "scope": scopes},
               HTTP_AUTHORIZATION=f"Basic {basic}").json()["access_token"]
h = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
hook = c.post("/api/v1/webhooks/", {"url": f"http://127.0.0.1:{server.server_port}/h",
              "events": ["customer.created"]}, content_type="application/json", **h).json()
customer = c.post("/api/v1/customers/", {"name": "Jane", "code": "J_1", "phone_number": "0712345678"},
                  content_type="application/json", **h).json()
published = webhooks.publish_due(publish=lambda ids, request_id: f"m{ids[0]}", limit=10)
[row] = WebhookDelivery.objects.all()
outcome = deliver(row.pk)
headers, body = got[0]
print(json.dumps({
    "hook": c.get(f"/api/v1/webhooks/{hook['id']}/", **h).json(),
    "listed": [x["id"] for x in c.get("/api/v1/webhooks/", **h).json()["items"]],
    "published": published,
    "outcome": outcome,
    "event": Webhook(hook["secret"]).verify(body, headers),
    "customer": customer,
}))
"""


def test_webhooks_on_sqlite(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "OIDC_", "REDIS_", "DATABASE_", "WEBHOOKS_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="backend.settings.base",
        DJANGO_DEBUG="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'quick.sqlite3'}",
        OIDC_RSA_PRIVATE_KEY=os.environ.get("OIDC_RSA_PRIVATE_KEY", ""),
        WEBHOOKS_ALLOW_PRIVATE="1",
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    hook = data["hook"]
    assert hook["enabled"] is True
    assert hook["events"] == ["customer.created"]
    assert hook["created_at"].endswith("Z")
    assert hook["last_attempt_at"].endswith("Z")
    assert hook["last_error"] is None
    assert data["listed"] == [hook["id"]]
    assert data["published"] == 1
    assert data["outcome"] == "delivered"
    assert data["event"]["type"] == "customer.created"
    assert data["event"]["data"] == data["customer"]

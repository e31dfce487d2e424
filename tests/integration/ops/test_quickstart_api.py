"""The quick start's configuration (no DATABASE_URL: the embedded PostgreSQL, no REDIS_URL, the
built-in issuer) serves the API end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = r"""
import json, secrets, django
django.setup()
tag = secrets.token_hex(4)  # the embedded database keeps earlier runs' rows
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from backend.issuer.clients import create_client
import base64
cid, secret = create_client(name="t", scopes="customers:read customers:write orders:read orders:write")
c = Client()
basic = base64.b64encode(f"{cid}:{secret}".encode()).decode()
token = c.post("/o/token/", {"grant_type": "client_credentials",
               "scope": "customers:read customers:write orders:read orders:write"},
               HTTP_AUTHORIZATION=f"Basic {basic}").json()["access_token"]
h = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
customer = c.post("/api/v1/customers/", {"name": "Jane", "code": f"J_{tag}", "phone_number": "0712345678"},
                  content_type="application/json", **h).json()
orders = [c.post("/api/v1/orders/", {"customer_id": customer["id"], "item": "W", "amount": a},
                 content_type="application/json", **h).json() for a in ("1500", "0.10", 2)]
mine = f"/api/v1/orders/?customer_id={customer['id']}&limit=2"
first = c.get(mine, **h).json()
rest = c.get(mine + "&cursor=" + first["next_cursor"], **h).json()
since = c.get("/api/v1/orders/", {"customer_id": customer["id"], "since": orders[1]["time"]}, **h).json()
print(json.dumps({
    "customer": c.get(f"/api/v1/customers/{customer['id']}/", **h).json(),
    "order": c.get(f"/api/v1/orders/{orders[0]['id']}/", **h).json(),
    "pages": [[o["id"] for o in first["items"]], [o["id"] for o in rest["items"]]],
    "since": [o["id"] for o in since["items"]],
    "search": [x["id"] for x in c.get(f"/api/v1/customers/?search=j_{tag}", **h).json()["items"]],
    "ids": [o["id"] for o in orders],
}))
"""


def test_api_on_the_quick_start_defaults():
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "OIDC_", "REDIS_", "DATABASE_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="backend.settings.base",
        DJANGO_DEBUG="1",
        OIDC_RSA_PRIVATE_KEY=os.environ.get("OIDC_RSA_PRIVATE_KEY", ""),
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["customer"]["total_amount"] == "1502.10"
    assert data["customer"]["order_count"] == 3
    assert data["customer"]["created_at"].endswith("Z")
    assert data["order"]["amount"] == "1500.00"
    assert data["order"]["time"].endswith("Z")
    ids = data["ids"]
    assert data["pages"] == [[ids[2], ids[1]], [ids[0]]]
    assert data["since"] == [ids[2], ids[1]]
    assert data["search"] == [data["customer"]["id"]]

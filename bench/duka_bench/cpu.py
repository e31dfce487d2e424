"""CPU accounting of a measurement: per process group (web, worker, gateway, load, db, other),
per web process (an imbalance between gunicorn's workers shows), and the wait for a quiet
machine before a measurement."""

from __future__ import annotations

import os
import time
from typing import Any

from .config import OTHER_CPU_LIMIT, log
from .procs import Proc, cpu_ticks, descendants

# The processes whose CPU time each run reports separately (filled in by cli.execute()).
TRACKED: dict[str, Proc] = {}


class CpuSplit:
    """CPU used during a run, per group: web, worker, gateway (each a tree the bench started),
    load (wrk and this driver), db (PostgreSQL and Redis) and other. *other* is work this bench
    did not start; on a shared machine it disturbs every figure of that run, so it is recorded
    next to them. Shares are of the whole machine (all cores); `ticks` are raw clock ticks.

    `web_procs` is the CPU of each process of the web tree that has no child of its own (the
    gunicorn workers, not the master), in percent of one core: gthread keeps a keep-alive
    connection in the process that accepted it, so one worker can end up with all the load
    while the other idles, and only this split shows it."""

    def __enter__(self) -> CpuSplit:
        self.before = cpu_ticks()
        self.times = os.times()  # this driver and its waited-for children (wrk)
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        after = cpu_ticks()
        self.elapsed = time.monotonic() - self.started
        clock = os.sysconf("SC_CLK_TCK")
        group_of: dict[int, str] = {}
        for name, proc in TRACKED.items():
            for pid in (proc.popen.pid, *descendants(proc.popen.pid)):
                group_of[pid] = name
        ours = {os.getpid(), *descendants(os.getpid())}
        self.ticks = dict.fromkeys((*TRACKED, "load", "db", "other"), 0)
        times = os.times()
        spent = sum(times[:4]) - sum(self.times[:4])
        self.ticks["load"] = round(spent * clock)
        deltas: dict[int, int] = {}
        for pid, (comm, _, ticks) in after.items():
            delta = deltas[pid] = ticks - self.before.get(pid, (comm, 0, 0))[2]
            if pid in group_of:
                self.ticks[group_of[pid]] += delta
            elif pid in ours:
                pass  # the driver itself and exited children are in os.times() above
            elif comm.startswith(("postgres", "redis")):
                self.ticks["db"] += delta
            else:
                self.ticks["other"] += delta
        capacity = self.elapsed * clock * (os.cpu_count() or 1)
        self.result = {k: round(100 * v / capacity, 1) for k, v in self.ticks.items()}
        web = {pid for pid, name in group_of.items() if name == "web"}
        parents = {after[pid][1] for pid in web if pid in after}
        self.web_procs = [
            round(100 * deltas[pid] / max(self.elapsed * clock, 1e-9), 1)
            for pid in sorted(web - parents)
            if pid in deltas
        ]

    def ms_per_request(self, requests: int) -> dict[str, float]:
        tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
        return {k: round(v * tick_ms / max(requests, 1), 3) for k, v in self.ticks.items()}

    def figures(self, requests: int) -> dict[str, Any]:
        """What a measurement records of its CPU: shares, ms per request, each web process."""
        return {
            "cpu_pct": self.result,
            "cpu_ms_per_request": self.ms_per_request(requests),
            "web_procs_pct": self.web_procs,
        }


def wait_quiet(timeout: float) -> bool:
    """Wait (bounded) until work this bench did not start uses under OTHER_CPU_LIMIT % of the
    machine over one second; False when it never did within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        with CpuSplit() as sample:
            time.sleep(1.0)
        if sample.result["other"] <= OTHER_CPU_LIMIT:
            return True
        if time.monotonic() >= deadline:
            log(f"the machine stayed busy with other work ({sample.result['other']} % CPU)")
            return False

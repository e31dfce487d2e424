"""The soak's short form (bench/soak.py --short, docs/operate.md "Soak"): the Procfile's processes
under mixed load while a database failover, a Redis restart, a worker and a web SIGKILL, gateway
faults and a receiver outage follow one another; its ledger must reconcile.

It runs its own PostgreSQL pair, Redis and loopback outside services on free ports (never the
shared 5432/6379), so it needs the PostgreSQL server binaries and redis-server (.ci/tests
installs them when missing).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.broker import ROOT
from tests.fixtures.replica import _bindir

# The soak bounds its own waits (about 3 min); this only stops a hung run.
RUN_TIMEOUT_SECONDS = 420


def test_the_short_soak_reconciles_its_ledger(tmp_path: Path):
    if _bindir() is None or shutil.which("redis-server") is None:
        pytest.skip(
            "needs the PostgreSQL server binaries and redis-server (.ci/tests installs them)"
        )
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            "--short",
            "--results-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    output = result.stdout[-6000:] + result.stderr[-3000:]
    [results] = list(tmp_path.glob("*-soak-short.json"))  # the ledger was written
    ledger = json.loads(results.read_text())
    failed = [check for check in ledger["checks"] if not check["ok"]]
    assert not failed, output
    assert result.returncode == 0, output
    # The ledger judged a real run: orders were answered, SMS sent, events delivered, and each
    # fault was injected and recovered from.
    assert ledger["orders"]["answered_201"] > 0
    assert ledger["sms"]["sent_once"] > 0
    assert all(receiver["delivered"] > 0 for receiver in ledger["webhooks"].values())
    assert [fault["name"] for fault in ledger["faults"]] == [
        "db_failover",
        "redis_restart",
        "receiver_down",
        "worker_kill",
        "web_kill",
        "gateway_5xx",
        "gateway_timeout",
        "gateway_trickle",
    ]

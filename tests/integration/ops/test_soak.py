"""The soak's short form (bench/soak.py --short, docs/operate.md "Soak"): the Procfile's processes
under mixed load while a database failover, a Redis restart, a worker and a web SIGKILL, gateway
faults and a receiver outage follow one another; its ledger must reconcile.

It runs its own PostgreSQL pair, Redis and loopback outside services on free ports (never the
shared 5432/6379), so it needs the PostgreSQL server binaries and redis-server (.ci/tests
installs them when missing).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

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


def _ledger() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak_ledger", ROOT / "bench" / "soak_ledger.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _observed(ledger: ModuleType, **changes: object):
    """A small run that reconciles: two orders, each SMS accepted once and recorded, both
    events at the receiver, a 503 with Retry-After inside the failover, every fault recovered."""
    faults = [
        ledger.Fault("db_failover", "write", start=10, end=15, bound=15),
        ledger.Fault("worker_kill", "sms", start=20, end=25, details={"cut_orders": [2]}),
        ledger.Fault("receiver_down", "delivery:b", start=30, end=40),
    ]
    seen = {
        "attempts": [
            ledger.Attempt(1, 1.1, "order", 201),
            ledger.Attempt(12, 12.1, "order", 503, "5"),
            ledger.Attempt(16, 16.1, "order", 201),
        ],
        "answered": {"k1": 1, "k2": 2},
        "unresolved": [],
        "faults": faults,
        "orders": [(1, "soak k1", "sent", "m1", "", ""), (2, "soak k2", "delivered", "m2", "", "")],
        "gateway": [
            (2, "Order #1: x", True, "m1"),
            (21, "Order #2: x", False, None),
            (30, "Order #2: x", True, "m2"),
        ],
        "deliveries": {"b": [(3, "e1", 204), (41, "e2", 204)]},
        "outbox_events": [
            ("b", "e1", "order.created", "order:1", "delivered"),
            ("b", "e2", "order.created", "order:2", "delivered"),
        ],
        "item_prefix": "soak ",
    }
    seen.update(changes)
    return ledger.Observed(**seen)


def _failed(result: dict) -> dict[str, str]:
    return {
        check["name"].split(":")[0]: check["detail"]
        for check in result["checks"]
        if not check["ok"]
    }


def test_the_ledger_reconciles_a_run_without_losses():
    ledger = _ledger()
    result = ledger.reconcile(_observed(ledger), redelivery_bound=120)
    assert _failed(result) == {}
    assert result["ok"]
    assert [f["recovery_seconds"] for f in result["faults"]] == [1.1, 5, 1]
    assert result["faults"][1]["redelivery_seconds"] == [10]


def test_the_ledger_finds_each_kind_of_loss():
    ledger = _ledger()
    seen = _observed(
        ledger,
        # A 500, and a 503 outside any fault window.
        attempts=[ledger.Attempt(1, 1.1, "order", 500), ledger.Attempt(70, 70.1, "get", 503, "5")],
        # An order answered 201 that is not in the database (k3).
        answered={"k1": 1, "k2": 2, "k3": 3},
        # Order 1's SMS accepted twice; order 2's never, and still pending.
        orders=[(1, "soak k1", "sent", "m1", "", ""), (2, "soak k2", "pending", None, "", "")],
        gateway=[(2, "Order #1: x", True, "m1"), (60, "Order #1: x", True, "m9")],
        # Event e2 never reached the receiver.
        deliveries={"b": [(3, "e1", 204), (4, "e1", 204)]},
    )
    result = ledger.reconcile(seen, redelivery_bound=120)
    failed = _failed(result)
    assert set(failed) == {"orders", "sms", "webhooks", "http", "faults"}
    assert result["orders"]["lost"] == 1
    assert (result["sms"]["duplicated"], result["sms"]["lost"]) == (1, 1)
    assert result["webhooks"]["b"]["missing"] == 1
    assert result["webhooks"]["b"]["duplicate_deliveries"] == 1
    assert len(result["http_violations"]) == 2
    assert "worker_kill" in failed["faults"]  # the cut send never went out
    assert not result["ok"]

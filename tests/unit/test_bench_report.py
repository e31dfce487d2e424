"""The benchmark's report maths (bench/duka_bench/report.py) on made-up figures: CPU per order,
the targets of issue 11, the web-process column. No process is started."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bench.duka_bench import report


def _ep(
    label: str,
    kind: str,
    *,
    rps: float,
    ms: dict[str, float],
    p50: float = 10.0,
    p99: float = 50.0,
    other: float = 1.0,
    procs: list[float] | None = None,
) -> dict[str, Any]:
    return {
        "label": label,
        "kind": kind,
        "requests": int(rps * 10),
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "errors": 0,
        "cpu_pct": {"web": 80.0, "worker": 0.0, "db": 5.0, "load": 10.0, "other": other},
        "cpu_ms_per_request": {"web": 0.0, "worker": 0.0, "db": 0.0, "load": 0.0, **ms},
        "web_procs_pct": procs if procs is not None else [90.0, 88.0],
        "disturbed": other > 10,
    }


def _phase() -> dict[str, Any]:
    post = _ep("POST /api/v1/orders/", "write", rps=300, ms={"web": 1.0, "worker": 0.5}, p99=140)
    # CPU through the drain: what the order line and its target must use.
    post["through_drain"] = {
        "seconds": 12.0,
        "cpu_pct": {"web": 60.0, "worker": 30.0, "db": 10.0, "load": 5.0, "other": 2.0},
        "cpu_ms_per_request": {"web": 1.2, "worker": 1.5, "db": 0.5, "load": 0.1, "other": 0.0},
        "web_procs_pct": [60.0, 58.0],
    }
    return {
        "seeded_orders": 10_000,
        "seed_seconds": 2.0,
        "orders_before_reads": 10_000,
        "endpoints": {
            "healthz": _ep("GET /healthz", "ceiling", rps=2000, ms={"web": 0.35, "db": 0.05}),
            "order": _ep("GET /api/v1/orders/{id}/", "read", rps=1300, ms={"web": 0.6}),
            "orders": _ep("GET /api/v1/orders/?limit=50", "read", rps=1000, ms={"web": 0.8}),
            "post_order": post,
        },
    }


def _results(**extra: Any) -> dict[str, Any]:
    return {
        "concurrency": 32,
        "phases": {"10000": _phase()},
        "final_rss": {"web": {"max_process_mb": 110.0}, "worker": {"max_process_mb": 100.0}},
        **extra,
    }


def _met(checks: list[dict[str, Any]], starts: str) -> list[bool | None]:
    return [c["met"] for c in checks if c["target"].startswith(starts)]


def test_cpu_per_order_counts_the_drain_and_divides_by_healthz_web_and_db():
    line = report.cpu_per_order(_phase()["endpoints"])
    assert line is not None
    assert line["whole_ms"] == pytest.approx(1.2 + 1.5 + 0.5)
    assert line["healthz_ms"] == pytest.approx(0.4)
    assert line["whole_vs_healthz"] == pytest.approx(3.2 / 0.4)
    assert line["window"] == "wrk run and outbox drain"
    assert not line["disturbed"]
    text = report.cpu_per_order_line("10000", line)
    assert "= 3.20 ms" in text
    assert "8.0x" in text


def test_cpu_per_order_falls_back_to_the_wrk_run_and_needs_post_and_healthz():
    eps = _phase()["endpoints"]
    del eps["post_order"]["through_drain"]
    line = report.cpu_per_order(eps)
    assert line is not None
    assert line["whole_ms"] == pytest.approx(1.5)
    assert line["window"] == "wrk run"
    del eps["post_order"]
    assert report.cpu_per_order(eps) is None


def test_cpu_per_order_is_disturbed_when_other_work_used_the_drain():
    eps = _phase()["endpoints"]
    eps["post_order"]["through_drain"]["cpu_pct"]["other"] = 25.0
    line = report.cpu_per_order(eps)
    assert line is not None
    assert line["disturbed"]
    assert "disturbed" in report.cpu_per_order_line(10_000, line)


def test_targets_of_issue_11_met():
    checks = report.targets(_results())
    assert _met(checks, "`/healthz` req/s") == [None]
    assert "2000 req/s" in checks[0]["measured"]
    assert _met(checks, "POST /orders/ >= 0.12x") == [True]
    assert _met(checks, "CPU per order") == [True]  # 3.2 / 0.4 = 8.0, the bound itself
    assert _met(checks, "POST /orders/ p99 <= 150 ms at 32 connections") == [True]
    assert _met(checks, "GET /api/v1/orders/{id}/ >= 0.6x") == [True]
    assert _met(checks, "GET /api/v1/orders/?limit=50 >= 0.45x") == [True]
    assert all(c["met"] is not False for c in checks)


def _calibrated(rps: float, web: float, *, other: float = 1.0) -> dict[str, Any]:
    return {
        "seconds": 8.0,
        "rps": rps,
        "cpu_pct": {"web": 85.0, "worker": 0.0, "db": 1.0, "load": 8.0, "other": other},
        "cpu_ms_per_request": {"web": web, "worker": 0.0, "db": 0.0, "load": 0.0},
        "disturbed": other > 10,
    }


def test_ratios_divide_by_the_healthz_measured_right_before():
    """The size's /healthz (2000 req/s, 0.4 ms) ran minutes earlier; the machine got slower since."""
    results = _results()
    eps = results["phases"]["10000"]["endpoints"]
    eps["post_order"]["ceiling"] = _calibrated(1500, 0.5)
    eps["order"]["ceiling"] = _calibrated(2500, 0.3)

    line = report.cpu_per_order(eps)
    assert line is not None
    assert line["healthz_ms"] == pytest.approx(0.5)
    assert line["whole_vs_healthz"] == pytest.approx(3.2 / 0.5)
    assert "right before" in report.cpu_per_order_line(10_000, line)
    checks = report.targets(results)
    post = next(c for c in checks if c["target"].startswith("POST /orders/ >= 0.12x"))
    assert post["measured"].startswith("0.20x (300 / 1500)")
    order = next(c for c in checks if c["target"].startswith("GET /api/v1/orders/{id}/ >="))
    assert order["measured"].startswith("0.52x (1300 / 2500)") and order["met"] is False
    orders = next(c for c in checks if c["target"].startswith("GET /api/v1/orders/?limit=50 >="))
    assert orders["measured"].startswith("0.50x (1000 / 2000)")  # no calibration: the size's run
    table = report.markdown(_printable(results))
    assert "| `GET /api/v1/orders/{id}/` | 1300 | 0.52 | 2500 |" in table
    assert "| `GET /api/v1/orders/?limit=50` | 1000 | 0.50 | - |" in table


def _printable(results: dict[str, Any]) -> dict[str, Any]:
    """What `markdown` reads besides the figures the targets use."""
    rss = {"max_process_mb": 110.0, "total_mb": 330.0, "processes": 3}
    for phase in results["phases"].values():
        for ep in phase["endpoints"].values():
            ep.update(web_rss=rss, worker_rss=rss)
    return {
        **results,
        "machine": {"cores": 2, "cpu": "test", "python": "3.11", "postgresql": "15"},
        "date": "2026-12-06T00:00:00+00:00",
        "label": "",
        "commit": "abc",
        "dirty": False,
        "quick": True,
        "web_command": "gunicorn",
        "web_env": {},
        "worker_command": "dramatiq",
        "wrk_threads": 2,
        "seconds_per_endpoint": 20,
        "final_rss": {"web": rss, "worker": rss},
        "targets": report.targets(results),
    }


def test_a_disturbed_calibration_marks_the_ratio():
    results = _results()
    results["phases"]["10000"]["endpoints"]["order"]["ceiling"] = _calibrated(2000, 0.4, other=30)
    order = next(
        c for c in report.targets(results) if c["target"].startswith("GET /api/v1/orders/{id}/ >=")
    )
    assert order["measured"].endswith("disturbed by other work on the machine")


@pytest.mark.parametrize(
    ("change", "missed"),
    [
        (lambda p: p["endpoints"]["post_order"].update(rps=230), "POST /orders/ >= 0.12x"),
        (
            lambda p: p["endpoints"]["post_order"]["through_drain"]["cpu_ms_per_request"].update(
                worker=1.6
            ),
            "CPU per order",
        ),
        (lambda p: p["endpoints"]["post_order"].update(p99_ms=151), "POST /orders/ p99"),
        (lambda p: p["endpoints"]["order"].update(rps=1100), "GET /api/v1/orders/{id}/ >="),
        (lambda p: p["endpoints"]["orders"].update(rps=880), "GET /api/v1/orders/?limit=50 >="),
    ],
)
def test_targets_of_issue_11_missed(change, missed):
    results = _results()
    change(results["phases"]["10000"])
    assert _met(report.targets(results), missed) == [False]


def test_p50_growth_drain_and_rss_targets():
    large = copy.deepcopy(_phase())
    large["endpoints"]["order"]["p50_ms"] = 12.6  # 1.26x the 10k p50
    results = _results(
        burst={"seconds": 60, "drain_seconds": 31.0, "pending_peak": 900, "requests": 9000}
    )
    results["phases"]["1000000"] = large
    results["final_rss"]["web"]["max_process_mb"] = 200.0
    checks = report.targets(results)
    assert _met(checks, "GET /api/v1/orders/{id}/ p50 at 1,000,000") == [False]
    assert _met(checks, "GET /api/v1/orders/?limit=50 p50 at 1,000,000") == [True]
    assert _met(checks, "outbox drained <= 30 s") == [False]
    assert _met(checks, "web worker RSS < 200 MB") == [False]


def test_web_procs_cell_shows_each_process_share_of_a_core():
    assert report.web_procs_cell({"web_procs_pct": [97.4, 12.0]}) == "97/12"
    assert report.web_procs_cell({}) == "-"

"""What a run's figures mean: CPU per order, the targets of issue 11, the markdown and JSON
results. Pure functions of the results dict (no process is started here), so tests can feed
them made-up figures."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

from .config import OTHER_CPU_LIMIT, PG_ADMIN_URL, RESULTS

# Targets of issue 11 (every figure a ratio within one run, except the drain and the RSS).
POST_VS_HEALTHZ = 0.12
CPU_PER_ORDER_VS_HEALTHZ = 8.0
POST_P99_MS = 150.0
# Minimum req/s of each read as a share of /healthz's; a read not listed gets READ_DEFAULT.
READ_VS_HEALTHZ = {"order": 0.6, "orders": 0.45, "orders_deep": 0.45, "customers": 0.45}
READ_DEFAULT = 0.45
P50_GROWTH = 1.25
DRAIN_SECONDS = 30.0
WEB_RSS_MB = 200.0


def ceiling_of(ep: dict[str, Any], healthz: dict[str, Any]) -> dict[str, Any]:
    """The `/healthz` figures an endpoint's ratios divide by: the run measured right before it
    (`--calibrate`), else the size's own `/healthz` run (results written before calibration)."""
    return ep.get("ceiling") or healthz


def cpu_per_order(endpoints: dict[str, Any]) -> dict[str, Any] | None:
    """Milliseconds of CPU per order placed in the `post_order` measurement, per group and in
    all (web + SMS worker + PostgreSQL/Redis), and that whole divided by what a `/healthz`
    request cost the web and the database in the same run (the machine's speed varies from
    day to day; the ratio does much less). The order's CPU is counted from the start of the
    wrk run until the outbox drained (`through_drain`), so the SMS sent after wrk stopped are
    in it; results written before that existed fall back to the wrk run alone. None when the
    run measured no POST or no `/healthz`."""
    post, healthz = endpoints.get("post_order"), endpoints.get("healthz")
    if not post or not healthz:
        return None
    healthz = ceiling_of(post, healthz)
    span = post.get("through_drain") or post
    ms = span["cpu_ms_per_request"]
    whole = ms["web"] + ms["worker"] + ms["db"]
    ceiling = healthz["cpu_ms_per_request"]["web"] + healthz["cpu_ms_per_request"]["db"]
    return {
        "orders": post["requests"],
        "web_ms": round(ms["web"], 3),
        "worker_ms": round(ms["worker"], 3),
        "db_ms": round(ms["db"], 3),
        "whole_ms": round(whole, 3),
        "healthz_ms": round(ceiling, 3),
        "healthz_rps": healthz["rps"],
        "whole_vs_healthz": round(whole / ceiling, 2) if ceiling > 0 else None,
        "healthz_when": "right before" if "ceiling" in post else "in the same run",
        "window": "wrk run and outbox drain" if "through_drain" in post else "wrk run",
        "window_seconds": span.get("seconds"),
        "disturbed": bool(
            post.get("disturbed")
            or healthz.get("disturbed")
            or span["cpu_pct"]["other"] > OTHER_CPU_LIMIT
        ),
    }


def cpu_per_order_line(size: int | str, p: dict[str, Any]) -> str:
    ratio = p["whole_vs_healthz"]
    return (
        f"CPU per order ({int(size):,} orders): web {p['web_ms']:.2f} + SMS worker "
        f"{p['worker_ms']:.2f} + database {p['db_ms']:.2f} = {p['whole_ms']:.2f} ms; "
        f"/healthz {p['healthz_ms']:.3f} ms per request (web + database, "
        f"{p['healthz_rps']:.0f} req/s, {p.get('healthz_when', 'in the same run')}); "
        "whole ÷ /healthz "
        + (f"{ratio:.1f}x" if ratio is not None else "n/a")
        + f" ({p['orders']} orders, counted over the {p['window']})"
        + ("; disturbed by other work on the machine" if p["disturbed"] else "")
    )


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets of issue 11 with their measured figures; `met` is None for a row that only
    informs (the absolute `/healthz` req/s every ratio divides by)."""
    checks: list[dict[str, Any]] = []

    def add(name: str, measured: str, ok: bool | None, *figures: dict[str, Any]) -> None:
        if any(f.get("disturbed") for f in figures):
            measured += "; disturbed by other work on the machine"
        checks.append({"target": name, "measured": measured, "met": ok})

    def share_of_ceiling(
        name: str, ep: dict[str, Any], floor: float, healthz: dict[str, Any], at: str
    ) -> None:
        top = ceiling_of(ep, healthz)
        ratio = ep["rps"] / top["rps"]
        add(
            f"{name} >= {floor}x /healthz req/s ({at})",
            f"{ratio:.2f}x ({ep['rps']:.0f} / {top['rps']:.0f})",
            ratio >= floor,
            ep,
            top,
        )

    phases = results["phases"]
    for size, data in phases.items():
        eps = data["endpoints"]
        at = f"{int(size):,} orders"
        healthz = eps["healthz"]
        ceiling = healthz["rps"]
        add(
            f"`/healthz` req/s, the ceiling every ratio divides by ({at})",
            f"{ceiling:.0f} req/s",
            None,
            healthz,
        )

        if "post_order" in eps:
            post = eps["post_order"]
            share_of_ceiling("POST /orders/", post, POST_VS_HEALTHZ, healthz, at)
            per_order = cpu_per_order(eps)
            if per_order is not None:
                whole = per_order["whole_vs_healthz"]
                add(
                    f"CPU per order (web + worker + database) <= {CPU_PER_ORDER_VS_HEALTHZ:g}x "
                    f"CPU per /healthz request ({at})",
                    (f"{whole:.1f}x" if whole is not None else "n/a")
                    + f" ({per_order['whole_ms']:.2f} / {per_order['healthz_ms']:.3f} ms)",
                    whole is not None and whole <= CPU_PER_ORDER_VS_HEALTHZ,
                    per_order,
                )
            add(
                f"POST /orders/ p99 <= {POST_P99_MS:.0f} ms at {results['concurrency']} "
                f"connections ({at})",
                f"{post['p99_ms']:.1f} ms",
                post["p99_ms"] <= POST_P99_MS,
                post,
            )
            add(f"POST /orders/ 0 errors ({at})", str(post["errors"]), post["errors"] == 0)
        for key, ep in eps.items():
            if ep["kind"] != "read":
                continue
            share_of_ceiling(ep["label"], ep, READ_VS_HEALTHZ.get(key, READ_DEFAULT), healthz, at)
            if ep["errors"]:
                add(f"{ep['label']} 0 errors ({at})", str(ep["errors"]), False)
    sizes = sorted(phases, key=int)
    if len(sizes) >= 2:
        small, large = phases[sizes[0]]["endpoints"], phases[sizes[-1]]["endpoints"]
        for key, ep in large.items():
            if ep["kind"] != "read" or key not in small:
                continue
            growth = ep["p50_ms"] / small[key]["p50_ms"]
            cpu = ep["cpu_ms_per_request"]["web"] / max(
                small[key]["cpu_ms_per_request"]["web"], 1e-9
            )
            add(
                f"{ep['label']} p50 at {int(sizes[-1]):,} <= {P50_GROWTH}x p50 at {int(sizes[0]):,}",
                f"{growth:.2f}x ({ep['p50_ms']:.2f} / {small[key]['p50_ms']:.2f} ms; "
                f"web CPU per request {cpu:.2f}x)",
                growth <= P50_GROWTH,
                ep,
                small[key],
            )
    if "burst" in results:
        b = results["burst"]
        drain = b["drain_seconds"]
        add(
            f"outbox drained <= {DRAIN_SECONDS:.0f} s after a {b['seconds']:.0f} s order burst",
            f"{drain} s (peak {b['pending_peak']} pending, {b['requests']} orders)"
            if drain is not None
            else "not drained",
            drain is not None and drain <= DRAIN_SECONDS,
        )
    web_rss = results["final_rss"]["web"]["max_process_mb"]
    add(
        f"web worker RSS < {WEB_RSS_MB:.0f} MB after the run", f"{web_rss} MB", web_rss < WEB_RSS_MB
    )
    return checks


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# Duka benchmark {results['date']}"
        + (f" ({results['label']})" if results["label"] else ""),
        "",
        f"- machine: {m['cores']} cores ({m['cpu']}), Python {m['python']}, PostgreSQL {m['postgresql']}",
        f"- commit: {results['commit']}{' (uncommitted changes)' if results['dirty'] else ''}"
        + (" · quick mode" if results["quick"] else ""),
        f"- web: `{results['web_command']}`"
        + "".join(f" `{k}={v}`" for k, v in results["web_env"].items())
        + (" with the bench-only floor views (`--floor`)" if results.get("floor") else ""),
        f"- worker: `{results['worker_command']}`",
        f"- load: wrk, {results['wrk_threads']} threads, {results['concurrency']} connections, "
        f"{results['seconds_per_endpoint']:.0f} s per endpoint after a warm-up, same machine",
        "- CPU ms per request: CPU time of the web processes, the SMS worker, PostgreSQL+Redis "
        "and the load generator (wrk) divided by the requests served; *other CPU %* is the share "
        "of all cores used by work this bench did not start: above a few percent another "
        "workload shared the machine and disturbed that row",
        "- web procs: CPU of each web worker process during the measurement, in % of one core "
        "(an even split means the connections are balanced between the processes)",
        "- CPU per order: web, SMS worker and PostgreSQL+Redis CPU from the start of the "
        "`POST /orders/` run until the outbox drained, per order placed, next to what a "
        "`/healthz` request cost the web and the database right before it",
        "- x healthz: req/s divided by those of a `/healthz` run measured right before this "
        "endpoint (`--calibrate`; the machine's speed drifts within minutes), or by the size's "
        "own `/healthz` row where there was none",
        "",
    ]
    for size, data in results["phases"].items():
        lines += [
            f"## {int(size):,} orders seeded ({data['orders_before_reads']:,} in the read model; "
            f"seed took {data['seed_seconds']} s)",
            "",
            "| endpoint | req/s | x healthz | healthz right before, req/s | p50 ms | p99 ms | errors | web RSS MB (max worker / total) | worker RSS MB (max / total) | CPU ms per request: web / worker / db / load (other CPU %) | web procs (% of a core) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        healthz = data["endpoints"]["healthz"]
        for ep in data["endpoints"].values():
            mark = " (disturbed)" if ep.get("disturbed") else ""
            top = ceiling_of(ep, healthz)["rps"]
            before = f"{ep['ceiling']['rps']:.0f}" if "ceiling" in ep else "-"
            lines.append(
                f"| `{ep['label']}`{mark} | {ep['rps']:.0f} | {ep['rps'] / top:.2f} | {before} | {ep['p50_ms']:.2f} "
                f"| {ep['p99_ms']:.2f} | {ep['errors']} | {ep['web_rss']['max_process_mb']:.0f} / "
                f"{ep['web_rss']['total_mb']:.0f} | {ep['worker_rss']['max_process_mb']:.0f} / "
                f"{ep['worker_rss']['total_mb']:.0f} | {_cpu_cell(ep)} | {web_procs_cell(ep)} |"
            )
        lines.append("")
        if data.get("cpu_per_order"):
            lines += [cpu_per_order_line(size, data["cpu_per_order"]) + ".", ""]
        if data.get("drain_after_post_seconds") is not None:
            lines += [
                f"Outbox drained {data['drain_after_post_seconds']} s after the POST run.",
                "",
            ]
    if "burst" in results:
        b = results["burst"]
        samples = b["pending_samples"][:: max(1, len(b["pending_samples"]) // 40)]
        series = ", ".join(f"{t:.1f}s:{c}" for t, c in samples)
        lines += [
            f"## SMS burst ({b['seconds']:.0f} s of POST /api/v1/orders/ at concurrency {results['concurrency']})",
            "",
            f"{b['requests']} orders at {b['rps']:.0f} req/s (p50 {b['p50_ms']:.1f} ms, p99 "
            f"{b['p99_ms']:.1f} ms, {b['errors']} errors); pending outbox peaked at "
            f"{b['pending_peak']}, was {b['pending_at_burst_end']} when the burst ended, and "
            f"reached 0 {b['drain_seconds']} s later. The gateway accepted {b['gateway_accepted']} SMS. "
            f"Web procs {web_procs_cell(b)} of a core.",
            "",
            f"Pending over time (seconds since the burst started; burst ended at {b['burst_end_s']} s): {series}",
            "",
        ]
    final = results["final_rss"]
    lines += [
        f"After the run: web RSS {final['web']['max_process_mb']} MB per worker process "
        f"({final['web']['total_mb']} MB for {final['web']['processes']} processes), SMS worker "
        f"{final['worker']['max_process_mb']} MB per process ({final['worker']['total_mb']} MB total).",
        "",
        "## Targets (issue 11)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for check in results["targets"]:
        mark = {True: "yes", False: "**no**", None: "-"}[check["met"]]
        lines.append(f"| {check['target']} | {check['measured']} | {mark} |")
    return "\n".join(lines) + "\n"


def _cpu_cell(ep: dict[str, Any]) -> str:
    ms, pct = ep["cpu_ms_per_request"], ep["cpu_pct"]
    return (
        f"{ms['web']:.2f} / {ms['worker']:.2f} / {ms['db']:.2f} / {ms['load']:.2f} "
        f"({pct['other']:.0f} %)"
    )


def web_procs_cell(ep: dict[str, Any]) -> str:
    """`93/91` for two web processes each busy most of a core; `-` for older results."""
    procs = ep.get("web_procs_pct")
    return "/".join(f"{p:.0f}" for p in procs) if procs else "-"


def machine() -> dict[str, Any]:
    from .procs import db_scalar

    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "postgresql": db_scalar(PG_ADMIN_URL, "SHOW server_version"),
    }


def write_results(results: dict[str, Any], *, label: str, quick: bool) -> tuple[str, str]:
    """bench/results/<stamp>-<cores>cores[-label][-quick].json and .md; (name, markdown)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}-{results['machine']['cores']}cores" + (f"-{label}" if label else "")
    name += "-quick" if quick else ""
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    report = markdown(results)
    (RESULTS / f"{name}.md").write_text(report)
    return name, report

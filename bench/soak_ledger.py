"""The soak's ledger: what the client and the loopback outside services saw, reconciled with the
database at the end (bench/soak.py records, this module judges and reports).

Checks, each a line of the report and all of them needed for exit status 0:
- every order answered 201 exists exactly once (its item carries its Idempotency-Key);
- every order has exactly one SMS accepted by the gateway, recorded as sent with that message's
  id, or none and is `failed` with a reason; none is still pending after the drain;
- every event the outbox holds reached every subscribed receiver (deduplicated by its
  `webhook-id`; duplicate deliveries are counted, allowed and reported), and every order has
  its `order.created` event for every receiver;
- no 5xx outside a fault window (plus the contract's 15 s to recover), inside only 503s with
  `Retry-After`; no unanswered request outside a web process's absence;
- each fault was injected and recovered from (first success after its end), within the
  contract's bound where it sets one (scaled with the run's timings).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

RECOVERY_ALLOWANCE_SECONDS = 15.0  # contract section 6: success again within 15 s
ORDER_ID = re.compile(r"#(\d+)")


@dataclass
class Attempt:
    """One HTTP request of the load (seconds since the soak's start)."""

    sent: float
    done: float
    kind: str  # order, get, list, token
    status: int  # 0: no answer (connection refused or cut, timeout)
    retry_after: str | None = None
    error: str = ""


@dataclass
class Fault:
    name: str
    probe: str  # what recovery means: write, sms, delivery:<receiver>
    start: float = 0.0
    end: float = 0.0
    error: str = ""
    # The contract's bound in seconds, where it sets one, on `bound_of`: "recovery" (the first
    # success after the end) or "caught_up" (the last of what waited through the fault).
    bound: float | None = None
    bound_of: str = "recovery"
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Observed:
    """Everything the ledger reconciles, gathered by the soak after the drain."""

    attempts: list[Attempt]
    answered: dict[str, int]  # Idempotency-Key -> order id of its 201
    unresolved: list[str]  # keys never answered 201 (gave up)
    faults: list[Fault]
    orders: list[
        tuple[int, str, str, str | None, str, str]
    ]  # id, item, sms status, message id, error_reason, last_error
    gateway: list[tuple[float, str, bool, str | None]]  # at, message, accepted, message id
    deliveries: dict[str, list[tuple[float, str, int]]]  # receiver -> (at, webhook-id, status)
    outbox_events: list[tuple[str, str, str, str, str]]  # receiver, event id, type, subject, status
    item_prefix: str
    # Outbox rows' history by `order:<id>` and `<receiver>:<event id>` (created, attempts,
    # enqueued, broker message id; seconds since the load began), for what did not arrive.
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _first_after(times: list[float], after: float) -> float | None:
    later = [t for t in times if t >= after]
    return min(later) if later else None


def _in_windows(a: Attempt, windows: list[tuple[float, float]]) -> bool:
    """Whether the request was under way during a window (one in flight at a fault's start
    is that fault's too)."""
    return any(a.sent <= end and a.done >= start for start, end in windows)


def reconcile(seen: Observed, *, redelivery_bound: float) -> dict[str, Any]:
    checks: list[Check] = []

    # Orders: each 201 once in the database, under the id it was answered with.
    by_item: dict[str, list[int]] = defaultdict(list)
    for order_id, item, *_ in seen.orders:
        by_item[item].append(order_id)
    lost = [k for k in seen.answered if not by_item.get(seen.item_prefix + k)]
    duplicated = {item: ids for item, ids in by_item.items() if len(ids) > 1}
    wrong_id = [
        k for k, oid in seen.answered.items() if by_item.get(seen.item_prefix + k, [oid]) != [oid]
    ]
    unresolved_created = [k for k in seen.unresolved if by_item.get(seen.item_prefix + k)]
    orders = {
        "answered_201": len(seen.answered),
        "in_database": len(seen.orders),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "answered_with_another_id": len(wrong_id),
        "unresolved_keys": len(seen.unresolved),
        "unresolved_keys_created": len(unresolved_created),
    }
    checks.append(
        Check(
            "orders: every 201 exists exactly once",
            not lost and not duplicated and not wrong_id and not seen.unresolved,
            f"{len(seen.answered)} answered 201, {len(lost)} lost, {len(duplicated)} duplicated,"
            f" {len(wrong_id)} under another id, {len(seen.unresolved)} keys never answered",
        )
    )

    # SMS: one acceptance per order, recorded as such; or failed with a reason.
    accepted: dict[int, list[tuple[float, str | None]]] = defaultdict(list)
    for at, message, ok, message_id in seen.gateway:
        match = ORDER_ID.search(message)
        if ok and match:
            accepted[int(match.group(1))].append((at, message_id))
    sms = Counter[str]()
    failed_reasons = Counter[str]()
    bad: list[str] = []
    unsent: list[dict[str, Any]] = []
    for order_id, _, status, message_id, error_reason, last_error in seen.orders:
        got = accepted.get(order_id, [])
        if len(got) > 1:
            sms["duplicated"] += 1
            bad.append(f"#{order_id}: {len(got)} SMS accepted")
            unsent.append({"order": order_id, "accepted_at": sorted(round(t, 2) for t, _ in got)})
        elif len(got) == 1:
            if status in ("sent", "delivered") and message_id == got[0][1]:
                sms["sent_once"] += 1
            else:
                sms["accepted_but_recorded_otherwise"] += 1
                bad.append(f"#{order_id}: accepted, recorded {status} {message_id}")
        elif status == "failed" and (error_reason or last_error):
            sms["failed_with_reason"] += 1
            failed_reasons[error_reason or last_error[:60]] += 1
        else:
            sms["lost" if status == "pending" else "not_sent_" + status] += 1
            bad.append(f"#{order_id}: no SMS accepted, status {status}")
            unsent.append({"order": order_id, **seen.rows.get(f"order:{order_id}", {})})
    checks.append(
        Check(
            "sms: exactly one accepted per order (or failed with a reason)",
            not bad,
            ", ".join(f"{n} {k}" for k, n in sorted(sms.items()))
            + ("; " if bad else "")
            + "; ".join(bad[:5]),
        )
    )

    # Webhooks: every outbox event at every receiver, deduplicated by webhook-id.
    hooks: dict[str, dict[str, int]] = {}
    hook_bad: list[str] = []
    undelivered: list[dict[str, Any]] = []
    created_for: dict[str, set[int]] = defaultdict(set)
    for receiver, _, event_type, subject, _ in seen.outbox_events:
        if event_type == "order.created" and subject.startswith("order:"):
            created_for[receiver].add(int(subject.split(":", 1)[1]))
    for receiver, deliveries in seen.deliveries.items():
        expected = {e[1] for e in seen.outbox_events if e[0] == receiver}
        got = Counter(wid for _, wid, status in deliveries if 200 <= status < 300)
        missing = expected - set(got)
        unknown = set(got) - expected
        no_created = {o[0] for o in seen.orders} - created_for[receiver]
        hooks[receiver] = {
            "events": len(expected),
            "delivered": len(expected & set(got)),
            "missing": len(missing),
            "duplicate_deliveries": sum(n - 1 for n in got.values()),
            "unknown": len(unknown),
            "orders_without_order_created": len(no_created),
            "failed_attempts": sum(1 for _, _, status in deliveries if not 200 <= status < 300),
        }
        undelivered += [
            {"receiver": receiver, "event": e, **seen.rows.get(f"{receiver}:{e}", {})}
            for e in sorted(missing)
        ]
        if missing or unknown or no_created:
            hook_bad.append(
                f"{receiver}: {len(missing)} missing, {len(unknown)} unknown, "
                f"{len(no_created)} orders without order.created"
            )
    checks.append(
        Check(
            "webhooks: every event reached every receiver (deduplicated by webhook-id)",
            not hook_bad and bool(hooks),
            "; ".join(
                f"{r}: {h['delivered']}/{h['events']} events, {h['duplicate_deliveries']} duplicate"
                " deliveries"
                for r, h in hooks.items()
            )
            + ("; " + "; ".join(hook_bad) if hook_bad else ""),
        )
    )

    # HTTP answers inside and outside the fault windows.
    windows = [(f.start, f.end + RECOVERY_ALLOWANCE_SECONDS) for f in seen.faults]
    web_away = [
        (f.start, f.end + RECOVERY_ALLOWANCE_SECONDS) for f in seen.faults if f.name == "web_kill"
    ]
    statuses = Counter(str(a.status) for a in seen.attempts)
    violations: list[str] = []
    for a in seen.attempts:
        if a.status == 0:
            if not _in_windows(a, web_away):
                violations.append(f"t={a.sent:.1f} {a.kind}: no answer ({a.error})")
        elif a.status >= 500:
            if a.status != 503 or not a.retry_after:
                violations.append(
                    f"t={a.sent:.1f} {a.kind}: {a.status} retry-after={a.retry_after}"
                )
            elif not _in_windows(a, windows):
                violations.append(f"t={a.sent:.1f} {a.kind}: 503 outside a fault window")
        elif a.status >= 400 and a.status not in (409, 429):
            violations.append(f"t={a.sent:.1f} {a.kind}: {a.status}")
    checks.append(
        Check(
            "http: no 5xx outside fault windows, only 503 + Retry-After inside",
            not violations,
            f"{len(seen.attempts)} requests, statuses {dict(sorted(statuses.items()))}"
            + ("; " + "; ".join(violations[:5]) if violations else ""),
        )
    )

    # Recovery after each fault: the first success of what the fault broke, after its end.
    writes = [a.done for a in seen.attempts if a.kind == "order" and 200 <= a.status < 300]
    sms_times = sorted(at for at, _, ok, _ in seen.gateway if ok)
    # When each order's SMS and each event were first accepted/delivered, and when created.
    first_sms = {
        (f"order:{order_id}"): min(at for at, _ in times) for order_id, times in accepted.items()
    }
    first_delivery: dict[str, float] = {}
    for receiver, deliveries in seen.deliveries.items():
        for at, wid, status in deliveries:
            key = f"{receiver}:{wid}"
            if 200 <= status < 300 and at < first_delivery.get(key, float("inf")):
                first_delivery[key] = at
    faults: list[dict[str, Any]] = []
    for n, f in enumerate(seen.faults):
        # Answers counted for a fault: from its start to 15 s after its end, or the next fault.
        until = f.end + RECOVERY_ALLOWANCE_SECONDS
        if n + 1 < len(seen.faults):
            until = min(until, seen.faults[n + 1].start)
        if f.probe == "write":
            first = _first_after(writes, f.end)
        elif f.probe == "sms":
            first = _first_after(sms_times, f.end)
        else:
            receiver = f.probe.split(":", 1)[1]
            first = _first_after(
                [at for at, _, s in seen.deliveries.get(receiver, []) if 200 <= s < 300], f.end
            )
        recovery = None if first is None else round(first - f.end, 2)
        # Caught up: the last of what waited through the fault (created before its end, not
        # through before its start) arrived this long after the end.
        caught_up = None
        if f.probe != "write":
            firsts = first_sms if f.probe == "sms" else first_delivery
            prefix = "order:" if f.probe == "sms" else f.probe.split(":", 1)[1] + ":"
            waited = [
                at
                for key, at in firsts.items()
                if key.startswith(prefix)
                and at >= f.start
                and (seen.rows.get(key, {}).get("created") or float("inf")) <= f.end
            ]
            caught_up = round(max(0.0, max(waited) - f.end), 2) if waited else None
        row: dict[str, Any] = {
            **asdict(f),
            "start": round(f.start, 2),
            "end": round(f.end, 2),
            "seconds": round(f.end - f.start, 1),
            "recovery_seconds": recovery,
            "caught_up_seconds": caught_up,
            "503s": sum(1 for a in seen.attempts if a.status == 503 and f.start <= a.sent < until),
            "no_answer": sum(
                1 for a in seen.attempts if a.status == 0 and f.start <= a.sent < until
            ),
        }
        problems = []
        if f.error:
            problems.append(f"not injected: {f.error}")
        if recovery is None:
            problems.append("no success after its end")
        measured = caught_up if f.bound_of == "caught_up" else recovery
        if f.bound is not None and measured is not None and measured > f.bound:
            problems.append(f"{f.bound_of} in {measured} s > {f.bound} s")
        if f.name == "worker_kill":
            cut = f.details.get("cut_orders", [])
            waits = []
            for order_id in cut:
                times = sorted(at for at, _ in accepted.get(order_id, []))
                waits.append(None if not times else round(times[0] - f.start, 2))
            row["redelivery_seconds"] = waits
            row["redelivery_bound"] = redelivery_bound
            late = [w for w in waits if w is None or w > redelivery_bound]
            if not cut:
                problems.append("no send was cut by the kill")
            if late:
                problems.append(
                    f"{len(late)} of {len(cut)} cut sends not redelivered within "
                    f"{redelivery_bound:.0f} s: {waits}"
                )
        row["ok"] = not problems
        row["problems"] = problems
        faults.append(row)
    checks.append(
        Check(
            "faults: each injected and recovered from (within the contract's bound)",
            all(r["ok"] for r in faults) and bool(faults),
            "; ".join(f"{r['name']}: {', '.join(r['problems'])}" for r in faults if r["problems"])
            or f"{len(faults)} faults",
        )
    )
    return {
        "ok": all(c.ok for c in checks),
        "checks": [asdict(c) for c in checks],
        "orders": orders,
        "sms": {**dict(sms), "failed_reasons": dict(failed_reasons)},
        "sms_unsent_or_duplicated": unsent[:100],
        "webhooks": hooks,
        "webhooks_undelivered": undelivered[:100],
        "http_statuses": dict(sorted(statuses.items())),
        "http_violations": violations[:50],
        "faults": faults,
    }


def table(ledger: dict[str, Any]) -> str:
    """The ledger as markdown: faults with their recovery, then the checks."""
    lines = [
        "| fault | lasted s | 503s | no answer | recovery s | caught up s | bound s | ok |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for f in ledger["faults"]:
        recovery = "never" if f["recovery_seconds"] is None else f"{f['recovery_seconds']:.1f}"
        if f["name"] == "worker_kill" and f.get("redelivery_seconds"):
            waits = [w for w in f["redelivery_seconds"] if w is not None]
            if waits:
                recovery += f" (cut sends redelivered after {min(waits):.1f}-{max(waits):.1f})"
        bound = f.get("redelivery_bound") if f["name"] == "worker_kill" else f["bound"]
        lines.append(
            f"| {f['name']} | {f['seconds']:.1f} | {f['503s']} | {f['no_answer']} | {recovery} "
            f"| {'' if f['caught_up_seconds'] is None else f['caught_up_seconds']} "
            f"| {'' if bound is None else f'{bound:.0f}'} | {'yes' if f['ok'] else 'NO'} |"
        )
    lines += ["", "| check | ok | detail |", "|---|---|---|"]
    for c in ledger["checks"]:
        lines.append(f"| {c['name']} | {'yes' if c['ok'] else 'NO'} | {c['detail']} |")
    return "\n".join(lines)

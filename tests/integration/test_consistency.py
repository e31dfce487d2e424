"""Consistency under concurrency: mixed writes through the HTTP API from several threads at once.

Each thread has its own `django.test.Client` and so its own PostgreSQL connection; requests run
the full stack (middleware, auth, idempotency, command transactions). Afterwards:

* every read model equals a rebuild from the write tables (`rebuild_all`, compared inside a
  transaction that is rolled back, so the incremental state is what the assertions see);
* there is exactly one SMS notification per order;
* idempotent repeats (same key, same body, sent concurrently) created one resource each, and all
  of their responses name it; a reused key with another body created nothing;
* the orders in the database are exactly the ones the clients were told were created.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.db import connections, transaction
from django.test import Client

from backend.commands.models import Customer, IdempotencyRecord, Order, SmsNotification
from backend.projections import rebuild_all
from backend.queries.models import CustomerView, OrderView

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/v1"
THREADS = 6
OPS_PER_THREAD = 40
SHARED_KEYS = 8  # idempotency keys every thread sends (same body), racing each other
JOIN_TIMEOUT = 120.0
RETRIES = 100  # bounded retries of a 409 "still in progress"
SEED = 20261127


@dataclass
class Outcome:
    """What the clients were told: created ids, replays and every status."""

    orders: dict[int, tuple[int, Decimal]] = field(default_factory=dict)  # id -> customer, amount
    key_results: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    statuses: list[tuple[str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    replays: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, label: str, status: int) -> None:
        with self.lock:
            self.statuses.append((label, status))


def _call(
    client: Client, method: str, path: str, body: Any, headers: dict[str, str], **extra: str
) -> tuple[int, Any, bool]:
    """(status, JSON body, whether it was an idempotent replay)"""
    response = getattr(client, method)(
        f"{API}/{path}",
        data=json.dumps(body),
        content_type="application/json",
        **headers,
        **extra,
    )
    payload = json.loads(response.content) if response.content else None
    return response.status_code, payload, response.get("Idempotent-Replayed") == "true"


def _amount(rng: random.Random) -> Decimal:
    return Decimal(rng.randint(1, 10**6)) / 100


def _worker(
    index: int,
    customer_ids: list[int],
    headers: dict[str, str],
    start: threading.Barrier,
    outcome: Outcome,
) -> None:
    rng = random.Random(SEED + index)
    client = Client()
    try:
        start.wait(timeout=JOIN_TIMEOUT)
        for step in range(OPS_PER_THREAD):
            roll = rng.random()
            customer_id = rng.choice(customer_ids)
            if roll < 0.45:
                amount = _amount(rng)
                body = {
                    "customer_id": customer_id,
                    "item": f"Item {index}-{step}",
                    "amount": str(amount),
                }
                status, payload, _ = _call(client, "post", "orders/", body, headers)
                outcome.record("order", status)
                if status == 201:
                    with outcome.lock:
                        outcome.orders[payload["id"]] = (customer_id, amount)
            elif roll < 0.65:
                _repeat_shared_key(
                    client, rng.randrange(SHARED_KEYS), customer_ids, headers, outcome
                )
            elif roll < 0.8:
                body = {"name": f"Renamed {index}-{step}"}
                status, _, _ = _call(client, "patch", f"customers/{customer_id}/", body, headers)
                outcome.record("patch", status)
            elif roll < 0.95:
                body = {
                    "name": f"Replaced {index}-{step}",
                    "code": f"C{customer_id}-{index}-{step}",
                    "phone_number": "+254712345678",
                }
                status, _, _ = _call(client, "put", f"customers/{customer_id}/", body, headers)
                outcome.record("put", status)
            else:
                # A key some request already completed, sent with another body: refused, and
                # nothing is created. (Before any key completes, repeat a shared key instead.)
                with outcome.lock:
                    used = sorted(outcome.key_results)
                if not used:
                    _repeat_shared_key(
                        client, rng.randrange(SHARED_KEYS), customer_ids, headers, outcome
                    )
                    continue
                body = {"customer_id": customer_id, "item": "Other body", "amount": "1.00"}
                status, _, _ = _call(
                    client, "post", "orders/", body, headers, HTTP_IDEMPOTENCY_KEY=rng.choice(used)
                )
                outcome.record("mismatch", status)
    except Exception as exc:  # reported by the main thread, which can fail the test
        with outcome.lock:
            outcome.errors.append(f"thread {index}: {exc!r}")
    finally:
        connections.close_all()


def shared_body(key_index: int, customer_ids: list[int]) -> dict[str, Any]:
    """The one body every thread sends with `shared-<key_index>`."""
    return {
        "customer_id": customer_ids[key_index % len(customer_ids)],
        "item": f"Shared {key_index}",
        "amount": f"{100 + key_index}.50",
    }


def _repeat_shared_key(
    client: Client,
    key_index: int,
    customer_ids: list[int],
    headers: dict[str, str],
    outcome: Outcome,
) -> None:
    key = f"shared-{key_index}"
    body = shared_body(key_index, customer_ids)
    for _ in range(RETRIES):
        status, payload, replayed = _call(
            client, "post", "orders/", body, headers, HTTP_IDEMPOTENCY_KEY=key
        )
        if status != 409:
            break
        time.sleep(0.01)  # the first request with this key is still running
    outcome.record("idempotent", status)
    if status == 201:
        with outcome.lock:
            outcome.replays += replayed
            outcome.key_results[key].add(payload["id"])
            outcome.orders[payload["id"]] = (body["customer_id"], Decimal(body["amount"]))


def _views() -> tuple[list[tuple], list[tuple]]:
    return (
        list(CustomerView.objects.order_by("id").values_list()),
        list(OrderView.objects.order_by("id").values_list()),
    )


def _run_threads(target: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a writer thread hung"


def test_concurrent_mixed_writes_keep_every_read_model_exact(
    all_scopes_headers: dict[str, str],
) -> None:
    client = Client()
    customer_ids = []
    for n in range(5):
        body = {"name": f"Customer {n}", "code": f"CONS-{n}", "phone_number": "+254712345678"}
        status, payload, _ = _call(client, "post", "customers/", body, all_scopes_headers)
        assert status == 201, payload
        customer_ids.append(payload["id"])

    outcome = Outcome()
    start = threading.Barrier(THREADS)
    _run_threads(lambda i: _worker(i, customer_ids, all_scopes_headers, start, outcome))

    assert outcome.errors == []
    allowed = {
        "order": {201},
        "idempotent": {201},
        "patch": {200},
        "put": {200},
        "mismatch": {409},
    }
    unexpected = [
        (label, status) for label, status in outcome.statuses if status not in allowed[label]
    ]
    assert unexpected == []
    assert len(outcome.statuses) == THREADS * OPS_PER_THREAD
    assert {label for label, _ in outcome.statuses} == set(allowed), "every kind of write ran"

    # Idempotent repeats: one order per key, named by every response that got it.
    assert outcome.replays > 0, "no repeat was answered from a stored response"
    assert all(len(ids) == 1 for ids in outcome.key_results.values()), outcome.key_results
    for key, (order_id,) in outcome.key_results.items():
        record = IdempotencyRecord.objects.get(key=key)
        assert (record.resource_id, record.response_status) == (order_id, 201)
        index = int(key.removeprefix("shared-"))
        assert Order.objects.get(pk=order_id).item == shared_body(index, customer_ids)["item"]

    # The database holds exactly the orders the clients were told about, nothing more.
    stored = {o.pk: (o.customer_id, o.amount) for o in Order.objects.all()}
    assert stored == outcome.orders
    assert Order.objects.filter(item="Other body").count() == 0

    # One SMS notification per order.
    assert SmsNotification.objects.count() == Order.objects.count()
    assert set(SmsNotification.objects.values_list("order_id", flat=True)) == set(stored)

    # Read models: the incrementally maintained state equals a rebuild from the write tables.
    with transaction.atomic():
        incremental = _views()
        rebuild_all()
        rebuilt = _views()
        transaction.set_rollback(True)
    assert rebuilt == incremental
    assert len(incremental[0]) == Customer.objects.count() == len(customer_ids)
    assert len(incremental[1]) == len(stored)

    # And it agrees with the clients' own tally, per customer.
    expected: dict[int, Decimal] = defaultdict(Decimal)
    counts: dict[int, int] = defaultdict(int)
    for customer_id, amount in outcome.orders.values():
        expected[customer_id] += amount
        counts[customer_id] += 1
    for view in CustomerView.objects.all():
        assert (view.order_count, view.total_amount) == (counts[view.id], expected[view.id])

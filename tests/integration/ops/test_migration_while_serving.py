"""A release migrates while older processes still serve (contract section 6): a column widened
and a column added under a running web process cause no 5xx there.

Widening a column changes the result type of every prepared statement that selects it, which
PostgreSQL then refuses ("cached plan must not change result type") until the statement is
prepared again; reads and command handlers run such a statement once more.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection, models

from backend.commands.models import Customer, Order
from backend.queries.models import CustomerView, OrderView
from tests.factories import make_customer
from tests.fixtures.auth import API_SCOPES, builtin_token
from tests.integration.ops.test_gunicorn import Server, procfile_web

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 7  # past psycopg's prepare threshold (5) for every statement


def _widened(model: type[models.Model], name: str, max_length: int) -> models.Field:
    field = models.CharField(max_length=max_length)
    field.set_attributes_from_name(name)
    field.model = model
    return field


@contextmanager
def migrated() -> Iterator[None]:
    """What `AlterField(max_length=...)` and `AddField(null=True)` migrations run, undone after."""
    widened = [(Order, "item"), (OrderView, "item"), (Customer, "name"), (CustomerView, "name")]
    added = models.CharField(max_length=20, null=True)
    added.set_attributes_from_name("later_field")
    with connection.schema_editor() as editor:
        for model, name in widened:
            editor.alter_field(model, model._meta.get_field(name), _widened(model, name, 300))
        for model in (Order, OrderView, Customer, CustomerView):
            editor.add_field(model, added)
    try:
        yield
    finally:
        with connection.schema_editor() as editor:
            for model in (Order, OrderView, Customer, CustomerView):
                editor.remove_field(model, added)
            for model, name in widened:
                editor.alter_field(model, _widened(model, name, 300), model._meta.get_field(name))


def _every_endpoint(server: Server, headers: dict[str, str], customer: int, n: int) -> list:
    """(request, status) of one call of each customer and order endpoint."""
    calls: list[tuple[str, str, dict | None]] = [
        ("POST", "/api/v1/orders/", {"customer_id": customer, "item": f"Item {n}", "amount": 2}),
        ("GET", "/api/v1/orders/?limit=2", None),
        ("GET", f"/api/v1/orders/?customer_id={customer}", None),
        ("GET", f"/api/v1/customers/{customer}/", None),
        ("PATCH", f"/api/v1/customers/{customer}/", {"name": f"Jane {n}"}),
        ("GET", "/api/v1/customers/?limit=2", None),
        (
            "POST",
            "/api/v1/customers/",
            {"name": "New", "code": f"MIG-{n}", "phone_number": "0712345678"},
        ),
    ]
    results = []
    for method, path, body in calls:
        status, content, _ = server.request(method, path, body=body, headers=headers)
        results.append((f"{method} {path}", status, content[:200]))
        if method == "POST" and path == "/api/v1/orders/" and status == 201:
            order = content.decode().split('"id":', 1)[1].split(",", 1)[0]
            status, content, _ = server.request("GET", f"/api/v1/orders/{order}/", headers=headers)
            results.append(("GET order", status, content[:200]))
    return results


def test_a_widened_and_an_added_column_cause_no_5xx_in_a_serving_process(tmp_path: Path):
    headers = {"Authorization": f"Bearer {builtin_token(*API_SCOPES, sub='migration-test')}"}
    customer = make_customer()
    # One thread: every request runs on the one connection whose statements get prepared.
    with procfile_web(tmp_path, env={"WEB_THREADS": "1"}) as server:
        for n in range(ROUNDS):
            for label, status, body in _every_endpoint(server, headers, customer, n):
                assert status < 300, (label, status, body)
        with migrated():
            for n in range(ROUNDS, 2 * ROUNDS):
                for label, status, body in _every_endpoint(server, headers, customer, n):
                    assert status < 300, (label, status, body, server.log[-3000:])

"""Every endpoint of contract section 5 x every scope: the right scope succeeds, any other is 403.

A refused request must change nothing, so each 403 also checks the write tables are untouched.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from backend.commands import webhook_endpoints
from backend.commands.models import (
    Customer,
    Order,
    SmsNotification,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests.factories import make_customer, make_order

pytestmark = pytest.mark.django_db

SCOPES = ("customers:read", "customers:write", "orders:read", "orders:write", "webhooks:manage")

NEW_CUSTOMER = {"name": "Amina Otieno", "code": "AO-77", "phone_number": "+254722000777"}
NEW_WEBHOOK = {"url": "http://127.0.0.1:9/hook", "events": ["order.created"]}

# (method, path template, body, required scope, success status)
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, str, int]] = [
    ("POST", "customers/", NEW_CUSTOMER, "customers:write", 201),
    ("GET", "customers/", None, "customers:read", 200),
    ("GET", "customers/{customer}/", None, "customers:read", 200),
    ("PUT", "customers/{customer}/", NEW_CUSTOMER, "customers:write", 200),
    ("PATCH", "customers/{customer}/", {"name": "Renamed"}, "customers:write", 200),
    ("DELETE", "customers/{spare}/", None, "customers:write", 204),
    (
        "POST",
        "orders/",
        {"customer_id": "{customer}", "item": "Sugar", "amount": "120.50"},
        "orders:write",
        201,
    ),
    ("GET", "orders/", None, "orders:read", 200),
    ("GET", "orders/{order}/", None, "orders:read", 200),
    ("POST", "orders/{order}/sms/", None, "orders:write", 202),
    # Also needs orders:read, what its `order.created` events carry (ALSO_NEEDED).
    ("POST", "webhooks/", NEW_WEBHOOK, "webhooks:manage", 201),
    ("GET", "webhooks/", None, "webhooks:manage", 200),
    ("GET", "webhooks/{hook}/", None, "webhooks:manage", 200),
    ("DELETE", "webhooks/{hook}/", None, "webhooks:manage", 204),
    ("POST", "webhooks/{hook}/ping/", {}, "webhooks:manage", 202),
]


@pytest.fixture
def world(settings) -> dict[str, int]:
    settings.WEBHOOKS_ALLOW_PRIVATE = True  # the loopback URL above
    customer = make_customer(name="Jane Doe")
    order = make_order(customer)
    SmsNotification.objects.filter(order_id=order).update(status="failed")  # so it can be re-sent
    hook = webhook_endpoints.create_webhook_endpoint(
        webhook_endpoints.CreateWebhookEndpoint(
            owner="test-user",  # the tokens' `sub`: an endpoint is its creator's only
            url="http://127.0.0.1:9/h",
            events=["customer.created"],
        )
    )
    return {"customer": customer, "spare": make_customer(), "order": order, "hook": hook}


# Scopes an operation needs besides its own for this body; every token of the matrix carries
# them, so the operation's own scope is what each row tests. (Without them:
# tests/api/test_webhooks_api.py::test_subscribing_needs_the_read_scope_of_the_events.)
ALSO_NEEDED: dict[tuple[str, str], tuple[str, ...]] = {("POST", "webhooks/"): ("orders:read",)}


def snapshot() -> tuple:
    customers = tuple(Customer.objects.order_by("id").values_list("id", "name", "code"))
    orders = tuple(Order.objects.order_by("id").values_list("id", "item", "amount"))
    hooks = tuple(WebhookEndpoint.objects.order_by("id").values_list("id", "url", "deleted_at"))
    events = WebhookDelivery.objects.count()
    return customers, orders, hooks, events


def call(client: Client, method: str, path: str, body: Any, world: dict[str, int], headers: dict):
    url = "/api/v1/" + path.format(**world)
    kwargs: dict[str, Any] = dict(headers)
    if body is not None:
        text = json.dumps(body).replace('"{customer}"', str(world["customer"]))
        kwargs.update(data=text, content_type="application/json")
    elif method == "POST":  # a POST without a body, as `curl -X POST` sends it
        kwargs.update(data="", content_type="application/json")
    return getattr(client, method.lower())(url, **kwargs)


def endpoint_id(endpoint: tuple) -> str:
    return f"{endpoint[0]} {endpoint[1]}"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
@pytest.mark.parametrize("scope", SCOPES)
def test_scope_matrix(client: Client, auth_headers, world, endpoint, scope):
    method, path, body, required, success = endpoint
    before = snapshot()

    headers = auth_headers(scope, *ALSO_NEEDED.get((method, path), ()))
    response = call(client, method, path, body, world, headers)

    if scope == required:
        assert response.status_code == success, response.content
    else:
        assert response.status_code == 403, response.content
        assert response["WWW-Authenticate"] == (
            f'Bearer error="insufficient_scope", scope="{required}"'
        )
        assert response["Content-Type"] == "application/problem+json"
        assert snapshot() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
def test_a_token_without_scopes_is_403_everywhere(client: Client, auth_headers, world, endpoint):
    method, path, body, _, _ = endpoint
    before = snapshot()
    response = call(client, method, path, body, world, auth_headers())
    assert response.status_code == 403
    assert snapshot() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=endpoint_id)
@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, "Bearer"),
        ({"HTTP_AUTHORIZATION": "Bearer not.a.token"}, 'Bearer error="invalid_token"'),
        ({"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}, 'Bearer error="invalid_token"'),
    ],
    ids=["absent", "invalid", "basic"],
)
def test_every_endpoint_refuses_missing_or_invalid_tokens(
    client: Client, world, endpoint, headers, challenge
):
    method, path, body, _, _ = endpoint
    before = snapshot()
    response = call(client, method, path, body, world, headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == challenge
    assert snapshot() == before


def test_every_operation_in_the_schema_is_protected_except_the_sms_callback(client: Client):
    """Guards future routes: an operation without `auth=` would show no `security`."""
    schema = client.get("/api/v1/openapi.json").json()
    unprotected = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if not operation.get("security")
    ]
    assert all("sms" in entry for entry in unprotected), unprotected
    protected = {
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    }
    assert len(protected) == len(ENDPOINTS)

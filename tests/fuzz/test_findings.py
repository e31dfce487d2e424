"""Minimal reproductions of what fuzzing found, kept as regression tests.

Each was a 5xx (or an input the contract says is refused but was accepted) before its fix.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from backend.commands.models import Customer, Order, SmsNotification, SmsStatus

API = "/api/v1"
CALLBACK_TOKEN = "findings-callback-token"


def _json(client: Client, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return getattr(client, method)(
        path, data=json.dumps(body), content_type="application/json", **headers
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "since=1147-10-26T09:30:36.6-23:54",  # PostgreSQL refuses offsets beyond +-15:59
        "until=2000-01-01T00:00:00%2B23:59",
        "since=0001-01-01T00:00:00%2B01:00",  # before year 1 in UTC
        "until=9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    ],
)
def test_any_rfc3339_offset_is_answered(
    client: Client, all_scopes_headers: dict[str, str], query: str
) -> None:
    response = client.get(f"{API}/orders/?{query}", **all_scopes_headers)
    assert response.status_code == 200, response.content


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["0.5", "1700000000", "2026-11-27", "2026-11-27T08:30:00"])
def test_since_is_rfc3339_only(
    client: Client, all_scopes_headers: dict[str, str], value: str
) -> None:
    response = client.get(f"{API}/orders/?until={value}", **all_scopes_headers)
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["loc"] == ["query", "until"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "customers/", {"name": "\x00", "code": "NUL-1", "phone_number": "+254712345678"}),
        (
            "post",
            "customers/",
            {"name": "a\x00b", "code": "NUL-2", "phone_number": "+254712345678"},
        ),
        ("post", "orders/", {"customer_id": 1, "item": "x\x00", "amount": "1.00"}),
    ],
)
def test_nul_in_body_text_is_a_422(
    client: Client,
    all_scopes_headers: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    response = _json(client, method, f"{API}/{path}", body, all_scopes_headers)
    assert response.status_code == 422, response.content
    field = "item" if path == "orders/" else "name"
    assert ["body", field] in [error["loc"] for error in response.json()["errors"]]
    assert Customer.objects.count() == 0
    assert Order.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["search=a%00b", "code=a%00b"])
def test_nul_in_customer_filters_is_a_422(
    client: Client, all_scopes_headers: dict[str, str], query: str
) -> None:
    response = client.get(f"{API}/customers/?{query}", **all_scopes_headers)
    assert response.status_code == 422, response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "form",
    [
        "id=a%00b&status=Success",
        "id=a%00b&status=Failed&failureReason=x",
        "id=ATXid_1&status=Failed&failureReason=a%00b",
    ],
)
def test_nul_in_delivery_report_is_not_a_500(
    client: Client, all_scopes_headers: dict[str, str], settings: Any, form: str
) -> None:
    settings.SMS_CALLBACK_TOKEN = CALLBACK_TOKEN
    customer = _json(
        client,
        "post",
        f"{API}/customers/",
        {"name": "Jane", "code": "JANE", "phone_number": "+254712345678"},
        all_scopes_headers,
    ).json()
    order = _json(
        client,
        "post",
        f"{API}/orders/",
        {"customer_id": customer["id"], "item": "Widget", "amount": "10"},
        all_scopes_headers,
    ).json()
    # As if the gateway had accepted it: a report for ATXid_1 may now change the row.
    SmsNotification.objects.filter(order_id=order["id"]).update(
        status=SmsStatus.SENT, gateway_message_id="ATXid_1"
    )
    response = client.post(
        f"{API}/sms/delivery-reports/?token={CALLBACK_TOKEN}",
        data=form,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code in {200, 422}, response.content

"""No Content-Type, however malformed, produces a 5xx, on any endpoint (contract section 6)."""

from __future__ import annotations

import pytest

from backend.commands.models import Customer, Order

pytestmark = pytest.mark.django_db

MALFORMED = [
    "multipart/form-data",
    "multipart/form-data; boundary=",
    'multipart/form-data; boundary=""',
    "multipart/form-data; boundary=" + "b" * 300,
    "multipart/form-data; boundary=----x; charset=nope",
    "multipart/mixed",
    "multipart/",
    "application/x-www-form-urlencoded; charset=no-such-charset",
    "application/x-www-form-urlencoded; charset=utf-16",
    "application/json; charset=no-such-charset",
    "application/json; charset=utf-16",
    "application/json; boundary",
    "application/json;;;",
    "application/json; charset=\x7f",
    "text/plain",
    ";",
    "/",
    "*/*",
    "=",
    "application/\x00json",
    "\xff\xfe",
    "a" * 5000,
]
BODIES = [
    b'{"name": "X", "code": "CT", "phone_number": "+254712345678"}',
    b"id=ATX-1&status=Success",
    b"--x\r\nContent-Disposition: form-data; name=id\r\n\r\n1\r\n--x--\r\n",
    b"\xff\xfe\x00garbage",
]
OTHER_PATHS = ["/o/token/", "/healthz", "/readyz", "/metrics", "/api/v1/nowhere/"]


def endpoints(client, customer: int, order: int) -> list[tuple[str, str]]:
    document = client.get("/api/v1/openapi.json").json()
    found = [
        (method.upper(), path.format(customer_id=customer, order_id=order, endpoint_id=1))
        for path, item in document["paths"].items()
        for method in item
    ]
    found = [
        (method, path + ("?token=test-callback-token" if "delivery-reports" in path else ""))
        for method, path in found
    ]
    return found + [(m, p) for p in OTHER_PATHS for m in ("GET", "POST")]


def test_malformed_content_types_never_cause_a_5xx(api, client, settings):
    settings.SMS_CALLBACK_TOKEN = "test-callback-token"
    customer = api.post(
        "customers/", {"name": "Jane", "code": "CT-0", "phone_number": "+254712345678"}
    ).json()["id"]
    order = api.post("orders/", {"customer_id": customer, "item": "Tea", "amount": "1"}).json()[
        "id"
    ]
    targets = endpoints(client, customer, order)
    assert len(targets) >= 12
    failures = []
    for method, path in targets:
        for content_type in MALFORMED:
            for body in BODIES:
                response = client.generic(
                    method, path, body, content_type=content_type, **api.headers
                )
                if method == "POST" and response.status_code == 201:
                    assert content_type.startswith("application/json"), (path, content_type)
                if response.status_code >= 500:
                    failures.append((method, path, content_type, body[:20], response.status_code))
                elif response.status_code >= 400 and path.startswith("/api/"):
                    assert response["Content-Type"] == "application/problem+json", (
                        method,
                        path,
                        content_type,
                    )
    assert not failures, sorted({(m, p[:40], c[:60]) for m, p, c, _, _ in failures})
    # Only a body whose media type is JSON was accepted as a customer (with odd parameters, it
    # is still JSON); no other type created anything.
    assert Order.objects.count() == 1
    assert set(Customer.objects.values_list("code", flat=True)) <= {"CT-0", "CT"}


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=", "text/plain", "application/json"],
)
def test_delivery_report_needs_well_formed_form_data(client, settings, content_type):
    settings.SMS_CALLBACK_TOKEN = "test-callback-token"
    response = client.post(
        "/api/v1/sms/delivery-reports/?token=test-callback-token",
        b"id=ATX-1&status=Success",
        content_type=content_type,
    )
    assert response.status_code in (400, 415), response.content
    assert response["Content-Type"] == "application/problem+json"

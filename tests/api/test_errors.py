"""Every status code of contract section 6, as problem+json, and rejected requests change nothing."""

import json

import pytest
from django.db import connection

from backend.commands.models import Customer, IdempotencyRecord, Order, SmsNotification
from backend.queries.models import CustomerView, OrderView

pytestmark = pytest.mark.django_db

TABLES = [Customer, Order, SmsNotification, IdempotencyRecord, CustomerView, OrderView]


def state():
    return [list(model.objects.order_by("pk").values_list()) for model in TABLES]


def assert_problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert "Traceback" not in response.content.decode()
    return body


@pytest.fixture
def seeded(api):
    cid = api.post(
        "customers/", {"name": "Jane", "code": "J", "phone_number": "+254712345678"}
    ).json()["id"]
    api.post("orders/", {"customer_id": cid, "item": "x", "amount": "1"})
    return cid


REJECTED = [
    # (method, path, body or raw bytes, content type, status)
    ("POST", "customers/", b"{not json", "application/json", 400),
    ("POST", "customers/", b"\xff\xfe", "application/json", 400),
    ("POST", "orders/", b'{"customer_id": 1, "item": "x", "amount": "1"', "application/json", 400),
    ("POST", "customers/", {"name": "A", "code": "j", "phone_number": "+254712345679"}, None, 409),
    ("POST", "customers/", {"name": "", "code": "A B", "phone_number": "1"}, None, 422),
    (
        "POST",
        "customers/",
        {"name": "A", "code": "OK", "phone_number": "+254712345679", "extra": 1},
        None,
        422,
    ),
    ("POST", "customers/", [1, 2], None, 422),
    ("POST", "customers/", "just a string", None, 422),
    ("POST", "orders/", {"customer_id": "1", "item": "x", "amount": "1"}, None, 422),
    ("POST", "orders/", {"customer_id": 2**70, "item": "x", "amount": "1"}, None, 422),
    ("POST", "orders/", {"customer_id": 1, "item": "x" * 201, "amount": "1"}, None, 422),
    ("POST", "customers/", b"name=Jane", "application/x-www-form-urlencoded", 415),
    ("POST", "orders/", b'{"customer_id": 1}', "text/plain", 415),
    (
        "PUT",
        "customers/999999/",
        {"name": "A", "code": "B", "phone_number": "+254712345679"},
        None,
        404,
    ),
    ("PATCH", "customers/999999999999999999/", {"name": "A"}, None, 404),
    ("DELETE", "customers/1234567890123456789012/", None, None, 404),
    ("GET", "orders/0/", None, None, 404),
    ("GET", "nope/", None, None, 404),
    ("GET", "customers/abc/", None, None, 404),
    ("DELETE", "orders/", None, None, 405),
    ("PUT", "orders/1/", {"item": "x"}, None, 405),
    ("GET", "customers/?limit=0", None, None, 422),
    ("GET", "customers/?limit=201", None, None, 422),
    ("GET", "orders/?limit=abc", None, None, 422),
    ("GET", "orders/?since=yesterday", None, None, 422),
    ("GET", "orders/?since=2026-11-27T08:30:00", None, None, 422),
    ("GET", "orders/?customer_id=-1", None, None, 422),
    ("GET", "orders/?cursor=garbage", None, None, 400),
    ("GET", "customers/?cursor=eyJrIjpbMV19:1:abc", None, None, 400),
]


@pytest.mark.parametrize(("method", "path", "body", "content_type", "status"), REJECTED)
def test_rejected_requests_are_problems_and_change_nothing(
    api, seeded, method, path, body, content_type, status
):
    before = state()
    kwargs = {}
    if isinstance(body, bytes):
        kwargs["raw"] = body
    elif body is not None:
        kwargs["raw"] = json.dumps(body)
    if content_type:
        kwargs["content_type"] = content_type
    assert_problem(api.call(method, path, **kwargs), status)
    assert state() == before


def test_validation_errors_name_every_field(api):
    body = assert_problem(
        api.post("customers/", {"name": " ", "code": "bad code!", "phone_number": "12"}), 422
    )
    assert {tuple(e["loc"]) for e in body["errors"]} == {
        ("body", "name"),
        ("body", "code"),
        ("body", "phone_number"),
    }
    assert all(e["msg"] for e in body["errors"])


def test_delete_with_orders_is_409(api, seeded):
    before = state()
    body = assert_problem(api.call("DELETE", f"customers/{seeded}/"), 409)
    assert "orders" in body["detail"]
    assert state() == before


def test_body_over_one_mebibyte_is_413(api, seeded):
    before = state()
    big = json.dumps({"name": "x" * (1024 * 1024), "code": "BIG", "phone_number": "+254712345679"})
    assert_problem(api.call("POST", "customers/", raw=big), 413)
    assert state() == before


def test_405_keeps_allow_header(api):
    response = api.call("DELETE", "orders/")
    assert_problem(response, 405)
    assert "GET" in response["Allow"] and "POST" in response["Allow"]


def test_disallowed_host_is_400(client, all_scopes_headers):
    response = client.get("/api/v1/customers/", HTTP_HOST="evil.example", **all_scopes_headers)
    assert_problem(response, 400)


def test_unknown_path_outside_api_is_problem(client):
    assert_problem(client.get("/definitely-not-here"), 404)


def test_unexpected_error_is_500_problem_without_internals(api, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("backend.queries.customers.list_customers", boom)
    response = api.get("customers/")
    body = assert_problem(response, 500)
    assert "secret internals" not in json.dumps(body)


def test_database_stays_healthy_after_errors(api, seeded):
    api.call("POST", "customers/", raw=b"{")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)

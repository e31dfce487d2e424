"""Conditional requests: strong ETags and 304 on reads, If-Match (412) on customer writes."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections
from django.test import Client

from backend.commands.models import Customer
from backend.queries import customers, orders
from backend.queries.etags import tag
from backend.queries.models import CustomerView, OrderView
from tests.api.test_errors import assert_problem, state

BODY = {"name": "Jane", "code": "ETAG-1", "phone_number": "+254712345678"}


def strong_etag(response) -> str:
    tag = response["ETag"]
    assert tag.startswith('"') and tag.endswith('"') and len(tag) > 2, tag
    return tag


@pytest.fixture
def customer(api) -> int:
    response = api.post("customers/", BODY)
    assert response.status_code == 201
    return response.json()["id"]


@pytest.mark.django_db
def test_customer_etag_and_if_none_match(api, customer):
    first = api.get(f"customers/{customer}/")
    assert first.status_code == 200
    tag = strong_etag(first)
    assert api.get(f"customers/{customer}/")["ETag"] == tag  # stable while nothing changes

    for header in (tag, f'"other", {tag}', f"W/{tag}", "*"):
        cached = api.get(f"customers/{customer}/", HTTP_IF_NONE_MATCH=header)
        assert cached.status_code == 304, header
        assert cached.content == b""
        assert cached["ETag"] == tag
    assert api.get(f"customers/{customer}/", HTTP_IF_NONE_MATCH='"other"').status_code == 200

    # A new order changes the representation (order_count), so the tag changes with it.
    api.post("orders/", {"customer_id": customer, "item": "Tea", "amount": "1"})
    after_order = api.get(f"customers/{customer}/", HTTP_IF_NONE_MATCH=tag)
    assert after_order.status_code == 200
    assert after_order.json()["order_count"] == 1
    assert strong_etag(after_order) != tag


@pytest.mark.django_db
def test_order_etag_follows_sms_status(api, customer):
    order = api.post("orders/", {"customer_id": customer, "item": "Tea", "amount": "1"}).json()
    first = api.get(f"orders/{order['id']}/")
    tag = strong_etag(first)
    assert api.get(f"orders/{order['id']}/", HTTP_IF_NONE_MATCH=tag).status_code == 304
    OrderView.objects.filter(id=order["id"]).update(sms_status="delivered")
    polled = api.get(f"orders/{order['id']}/", HTTP_IF_NONE_MATCH=tag)
    assert polled.status_code == 200
    assert polled.json()["sms_status"] == "delivered"
    assert strong_etag(polled) != tag


@pytest.mark.django_db
def test_a_get_tag_is_the_tag_a_write_checks(api, customer):
    """A GET digests the body it sends (as PostgreSQL rendered it); the 201 body (as pydantic
    wrote it) and a write's If-Match check (the view it locked) give the same tag."""
    order = api.post("orders/", {"customer_id": customer, "item": "Chai \u00e9", "amount": "1.50"})
    got = api.get(f"orders/{order.json()['id']}/")
    assert got["ETag"] == tag(order.content) == tag(orders.get_order(order.json()["id"]))
    got = api.get(f"customers/{customer}/")
    assert got["ETag"] == tag(customers.get_customer(customer))
    replaced = api.call(
        "PUT", f"customers/{customer}/", {**BODY, "name": "J"}, HTTP_IF_MATCH=got["ETag"]
    )
    assert replaced.status_code == 200
    assert replaced["ETag"] == strong_etag(api.get(f"customers/{customer}/"))


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_if_match_mismatch_is_412_and_changes_nothing(api, customer, method):
    tag = strong_etag(api.get(f"customers/{customer}/"))
    body = None if method == "DELETE" else {**BODY, "name": "Changed"}
    before = state()
    for header in ('"stale"', f"W/{tag}", '"a", "b"', "garbage"):
        refused = api.call(method, f"customers/{customer}/", body, HTTP_IF_MATCH=header)
        problem = assert_problem(refused, 412)
        assert problem["type"] == "https://duka.dev/problems/precondition-failed"
        assert state() == before

    for header in (f'"stale", {tag}', "*"):
        if method == "DELETE" and header == "*":
            continue
        done = api.call(method, f"customers/{customer}/", body, HTTP_IF_MATCH=header)
        assert done.status_code == (204 if method == "DELETE" else 200), done.content
        if method != "DELETE":
            new_tag = strong_etag(done)
            assert new_tag != tag
            assert api.get(f"customers/{customer}/")["ETag"] == new_tag
            tag = new_tag
    if method == "DELETE":
        assert not Customer.objects.filter(pk=customer).exists()


@pytest.mark.django_db
def test_without_if_match_writes_proceed_and_unknown_ids_stay_404(api, customer):
    assert api.call("PATCH", f"customers/{customer}/", {"name": "Free"}).status_code == 200
    missing = api.call("PATCH", f"customers/{customer + 999}/", {"name": "x"}, HTTP_IF_MATCH="*")
    assert_problem(missing, 404)
    assert api.call("DELETE", f"customers/{customer}/", HTTP_IF_MATCH="*").status_code == 204


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_two_editors_with_one_etag_cannot_both_win(all_scopes_headers):
    """Both PUTs carry the same If-Match and are let go only once both wait on the row lock:
    a check made before taking the lock would let both through."""
    api_client = Client()
    created = api_client.post(
        "/api/v1/customers/", BODY, content_type="application/json", **all_scopes_headers
    )
    customer = created.json()["id"]
    tag = api_client.get(f"/api/v1/customers/{customer}/", **all_scopes_headers)["ETag"]

    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                Customer.objects.select_for_update().get(pk=customer)
                locked.set()
                release.wait(timeout=60)
        finally:
            connections.close_all()

    statuses: list[int] = []

    def edit(name: str) -> None:
        try:
            response = Client().put(
                f"/api/v1/customers/{customer}/",
                {**BODY, "name": name},
                content_type="application/json",
                HTTP_IF_MATCH=tag,
                **all_scopes_headers,
            )
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(timeout=30)
    editors = [threading.Thread(target=edit, args=(name,)) for name in ("Alice", "Bob")]
    for thread in editors:
        thread.start()
    deadline = time.monotonic() + 30
    while _waiting_on_locks() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    waiting = _waiting_on_locks()
    release.set()
    holder.join(timeout=30)
    for thread in editors:
        thread.join(timeout=30)
    assert waiting == 2
    assert sorted(statuses) == [200, 412]
    assert CustomerView.objects.get(id=customer).name in {"Alice", "Bob"}


@pytest.mark.django_db
def test_conditional_requests_are_documented(client):
    from pathlib import Path

    document = client.get("/api/v1/openapi.json").json()
    item = document["paths"]["/api/v1/customers/{customer_id}/"]
    for method in ("put", "patch", "delete"):
        assert "412" in item[method]["responses"]
        assert "If-Match" in {p["name"] for p in item[method]["parameters"]}
    for path in ("/api/v1/customers/{customer_id}/", "/api/v1/orders/{order_id}/"):
        get = document["paths"][path]["get"]
        assert "304" in get["responses"]
        assert "ETag" in get["responses"]["200"]["headers"]
        assert "If-None-Match" in {p["name"] for p in get["parameters"]}
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "If-None-Match" in readme and "If-Match" in readme
    assert "…/precondition-failed" in readme


@pytest.mark.django_db
def test_browser_apps_may_send_and_read_the_conditional_headers(client, settings, api, customer):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example"]
    preflight = client.options(
        f"/api/v1/customers/{customer}/",
        HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="if-match, authorization",
    )
    assert "if-match" in preflight["Access-Control-Allow-Headers"]
    got = api.get(f"customers/{customer}/", HTTP_ORIGIN="https://shop.example")
    assert "etag" in got["Access-Control-Expose-Headers"].lower()

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client

from backend.commands.models import Customer, IdempotencyRecord, Order, SmsNotification

pytestmark = pytest.mark.django_db

BODY = {"name": "Jane", "code": "J", "phone_number": "+254712345678"}


def test_repeat_replays_the_first_response(api):
    first = api.post("customers/", BODY, HTTP_IDEMPOTENCY_KEY="k-1")
    api.call("PATCH", f"customers/{first.json()['id']}/", {"name": "Changed later"})
    again = api.post("customers/", BODY, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    assert Customer.objects.count() == 1


def test_same_key_different_body_is_409(api):
    api.post("customers/", BODY, HTTP_IDEMPOTENCY_KEY="k-2")
    response = api.post("customers/", {**BODY, "name": "Other"}, HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert Customer.objects.count() == 1


def test_order_repeat_creates_no_second_order_or_sms(api):
    cid = api.post("customers/", BODY).json()["id"]
    order = {"customer_id": cid, "item": "Widget", "amount": "10"}
    a = api.post("orders/", order, HTTP_IDEMPOTENCY_KEY="o-1")
    b = api.post("orders/", {**order, "amount": 10.0}, HTTP_IDEMPOTENCY_KEY="o-1")
    assert a.content == b.content
    assert Order.objects.count() == SmsNotification.objects.count() == 1


def test_keys_are_scoped_to_subject_and_endpoint(client, auth_headers):
    alice = auth_headers("customers:write", "orders:write", sub="alice")
    bob = auth_headers("customers:write", sub="bob")
    r1 = client.post(
        "/api/v1/customers/",
        BODY,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
        **alice,
    )
    r2 = client.post(
        "/api/v1/customers/",
        {**BODY, "code": "B"},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
        **bob,
    )
    assert r1.status_code == r2.status_code == 201
    assert r1.json()["id"] != r2.json()["id"]
    r3 = client.post(
        "/api/v1/orders/",
        {"customer_id": r1.json()["id"], "item": "x", "amount": "1"},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="k",
        **alice,
    )
    assert r3.status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_malformed_key_is_400(api, key):
    response = api.post("customers/", BODY, HTTP_IDEMPOTENCY_KEY=key)
    assert response.status_code == 400
    assert not Customer.objects.exists()


def test_failed_request_releases_the_key(api):
    bad = {"customer_id": 999999, "item": "x", "amount": "1"}
    assert api.post("orders/", bad, HTTP_IDEMPOTENCY_KEY="o-2").status_code == 422
    assert not IdempotencyRecord.objects.exists()
    cid = api.post("customers/", BODY).json()["id"]
    assert (
        api.post("orders/", {**bad, "customer_id": cid}, HTTP_IDEMPOTENCY_KEY="o-2").status_code
        == 201
    )


def test_in_progress_repeat_is_409_and_abandoned_claim_is_taken_over(api):
    from backend.commands.idempotency import IdempotencyClaim, claim_key

    claim = claim_key(subject="test-user", endpoint="customers.create", key="k-3", fingerprint="f")
    assert isinstance(claim, IdempotencyClaim)
    IdempotencyRecord.objects.update(fingerprint=_fingerprint(api))
    assert api.post("customers/", BODY, HTTP_IDEMPOTENCY_KEY="k-3").status_code == 409
    IdempotencyRecord.objects.update(
        created_at=IdempotencyRecord.objects.get().created_at - timedelta(minutes=5)
    )
    assert api.post("customers/", BODY, HTTP_IDEMPOTENCY_KEY="k-3").status_code == 201


def _fingerprint(api) -> str:
    import hashlib
    import json

    from backend.api.schemas.customers import CustomerIn

    return hashlib.sha256(
        json.dumps(CustomerIn(**BODY).model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()


def test_replay_after_24_hours_is_a_new_request(api):
    api.post("customers/", BODY, HTTP_IDEMPOTENCY_KEY="k-4")
    IdempotencyRecord.objects.update(
        created_at=IdempotencyRecord.objects.get().created_at - timedelta(hours=25)
    )
    again = api.post("customers/", {**BODY, "code": "J2"}, HTTP_IDEMPOTENCY_KEY="k-4")
    assert again.status_code == 201
    assert Customer.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_create_one_resource(all_scopes_headers):
    cid = (
        Client()
        .post("/api/v1/customers/", BODY, content_type="application/json", **all_scopes_headers)
        .json()["id"]
    )
    statuses: list[int] = []
    barrier = threading.Barrier(8, timeout=30)

    def fire() -> None:
        try:
            barrier.wait()
            response = Client().post(
                "/api/v1/orders/",
                {"customer_id": cid, "item": "x", "amount": "5"},
                content_type="application/json",
                HTTP_IDEMPOTENCY_KEY="race",
                **all_scopes_headers,
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=fire) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert Order.objects.count() == 1
    assert SmsNotification.objects.count() == 1
    assert 201 in statuses
    assert set(statuses) <= {201, 409}
    assert len(statuses) == 8

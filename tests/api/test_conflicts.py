"""The four 409 causes each have their own problem `type`; only "in progress" says when to retry."""

from __future__ import annotations

import pytest

from backend.commands.idempotency import IdempotencyClaim, claim_key
from backend.commands.models import IdempotencyRecord
from tests.api.test_idempotency import BODY

pytestmark = pytest.mark.django_db

BASE = "https://duka.dev/problems/"


def conflict(response) -> dict:
    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def test_each_conflict_has_its_own_type_and_only_in_progress_has_retry_after(api):
    created = api.post("customers/", BODY)
    assert created.status_code == 201
    customer_id = created.json()["id"]

    duplicate = api.post("customers/", {**BODY, "code": BODY["code"].lower()})
    assert conflict(duplicate)["type"] == BASE + "duplicate-code"
    assert "Retry-After" not in duplicate

    api.post("orders/", {"customer_id": customer_id, "item": "Tea", "amount": "1"})
    has_orders = api.call("DELETE", f"customers/{customer_id}/")
    assert conflict(has_orders)["type"] == BASE + "customer-has-orders"
    assert "Retry-After" not in has_orders

    other = {**BODY, "code": "OTHER-1"}
    assert api.post("customers/", other, HTTP_IDEMPOTENCY_KEY="c-1").status_code == 201
    reused = api.post("customers/", {**other, "name": "Else"}, HTTP_IDEMPOTENCY_KEY="c-1")
    assert conflict(reused)["type"] == BASE + "idempotency-key-reused"
    assert "Retry-After" not in reused

    in_flight = {**BODY, "code": "OTHER-2"}
    claim = claim_key(
        subject="test-user", endpoint="customers.create", key="c-2", fingerprint="pending"
    )
    assert isinstance(claim, IdempotencyClaim)
    IdempotencyRecord.objects.filter(key="c-2").update(fingerprint=_fingerprint_of(in_flight))
    busy = api.post("customers/", in_flight, HTTP_IDEMPOTENCY_KEY="c-2")
    assert conflict(busy)["type"] == BASE + "idempotency-in-progress"
    assert int(busy["Retry-After"]) >= 1


def _fingerprint_of(body: dict) -> str:
    import hashlib
    import json

    from backend.api.schemas.customers import CustomerIn

    return hashlib.sha256(
        json.dumps(CustomerIn(**body).model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()


def test_conflict_types_are_documented(client):
    from pathlib import Path

    response = client.get("/api/v1/openapi.json").json()["components"]["responses"]["Conflict"]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in (
        "duplicate-code",
        "customer-has-orders",
        "idempotency-key-reused",
        "idempotency-in-progress",
    ):
        assert BASE + name in response["description"]
        assert f"…/{name}" in readme
    assert "Retry-After" in response["headers"]

import json

import pytest
from django.core.cache import cache

from backend.commands.models import Customer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def body(i: int) -> dict:
    return {"name": f"N{i}", "code": f"C{i}", "phone_number": "+254712345678"}


def test_writes_over_the_limit_are_429_with_retry_after(client, auth_headers, settings):
    settings.RATE_LIMIT_WRITES = "3/m"
    alice = auth_headers("customers:write", "customers:read", sub="alice")
    statuses = [
        client.post(
            "/api/v1/customers/", body(i), content_type="application/json", **alice
        ).status_code
        for i in range(5)
    ]
    assert statuses == [201, 201, 201, 429, 429]
    refused = client.post("/api/v1/customers/", body(9), content_type="application/json", **alice)
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["status"] == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert Customer.objects.count() == 3
    # Reads are not limited, and the limit is per subject.
    assert client.get("/api/v1/customers/", **alice).status_code == 200
    bob = auth_headers("customers:write", sub="bob")
    assert (
        client.post(
            "/api/v1/customers/", body(7), content_type="application/json", **bob
        ).status_code
        == 201
    )


def test_no_limit_when_unset(client, all_scopes_headers, settings):
    settings.RATE_LIMIT_WRITES = None
    for i in range(12):
        response = client.post(
            "/api/v1/customers/", body(i), content_type="application/json", **all_scopes_headers
        )
        assert response.status_code == 201


def test_unreachable_cache_lets_writes_through(client, all_scopes_headers, settings, monkeypatch):
    settings.RATE_LIMIT_WRITES = "1/m"

    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "incr", down)
    for i in range(3):
        response = client.post(
            "/api/v1/customers/", body(i), content_type="application/json", **all_scopes_headers
        )
        assert response.status_code == 201


def test_deeply_nested_json_is_400_before_any_query(api, django_assert_num_queries):
    deep = "[" * 40 + "]" * 40
    with django_assert_num_queries(0):
        response = api.call("POST", "customers/", raw=json.dumps({"name": json.loads(deep)}))
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


def test_very_deep_json_does_not_crash(api):
    response = api.call("POST", "customers/", raw="[" * 100_000 + "]" * 100_000)
    assert response.status_code == 400


@pytest.mark.parametrize("query", ["code=" + "x" * 33, "search=" + "x" * 201, "search="])
def test_query_strings_are_bounded(api, query):
    assert api.get(f"customers/?{query}").status_code == 422

import pytest

pytestmark = pytest.mark.django_db


def test_api_responses_carry_strict_headers(api):
    response = api.get("customers/")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Content-Security-Policy"].startswith("default-src 'none'")
    assert "Strict-Transport-Security" not in response  # plain HTTP


def test_hsts_on_https(api, settings):
    response = api.get("customers/", secure=True)
    assert response["Strict-Transport-Security"].startswith("max-age=")


def test_docs_policy_allows_its_own_assets_only(client):
    csp = client.get("/api/v1/docs")["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-eval" not in csp and "http" not in csp


def test_errors_carry_headers_too(client):
    response = client.get("/api/v1/customers/")
    assert response.status_code == 401
    assert response["X-Content-Type-Options"] == "nosniff"


def test_cors_is_off_by_default(api):
    response = api.get("customers/", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in response


def test_cors_when_configured(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example"]
    response = client.options(
        "/api/v1/customers/",
        HTTP_ORIGIN="https://shop.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, idempotency-key",
    )
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "idempotency-key" in response["Access-Control-Allow-Headers"]

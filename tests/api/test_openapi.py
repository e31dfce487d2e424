import pytest

pytestmark = pytest.mark.django_db

EXPECTED = {
    ("/api/v1/customers/", "post"): "customers:write",
    ("/api/v1/customers/", "get"): "customers:read",
    ("/api/v1/customers/{customer_id}/", "get"): "customers:read",
    ("/api/v1/customers/{customer_id}/", "put"): "customers:write",
    ("/api/v1/customers/{customer_id}/", "patch"): "customers:write",
    ("/api/v1/customers/{customer_id}/", "delete"): "customers:write",
    ("/api/v1/orders/", "post"): "orders:write",
    ("/api/v1/orders/", "get"): "orders:read",
    ("/api/v1/orders/{order_id}/", "get"): "orders:read",
}


def test_schema_is_public_and_lists_scopes_per_operation(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    for (path, method), scope in EXPECTED.items():
        security = schema["paths"][path][method]["security"]
        assert [next(iter(req.values())) for req in security] == [[scope]], (path, method)
    assert schema["components"]["securitySchemes"]


def test_docs_page_serves_its_assets_locally(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn" not in html.lower()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    asset = client.get("/static/ninja/swagger-ui-bundle.js")
    assert asset.status_code == 200


def test_docs_prefill_the_client_id_but_never_the_secret(client, settings):
    import json
    import re

    from backend.api.app import swagger_settings

    settings.OIDC_CLIENT_ID = "swagger-client"
    settings.OIDC_CLIENT_SECRET = "top-secret-value"
    oauth = swagger_settings()["dukaOAuth"]
    assert oauth["clientId"] == "swagger-client"
    assert "top-secret-value" not in json.dumps(swagger_settings())
    page = client.get("/api/v1/docs").content.decode()
    assert "/static/duka/swagger-oauth.js" in page
    assert "top-secret-value" not in page
    assert re.search(r'"dukaOAuth"', page)
    assert client.get("/static/duka/swagger-oauth.js").status_code == 200

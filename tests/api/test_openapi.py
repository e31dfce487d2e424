import json

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


def test_no_operation_authenticates_by_cookie_so_the_docs_send_no_csrf_token(client):
    """The docs page leaves out Ninja's CSRF token (backend.api.app.DukaSwagger): that holds
    while every security scheme is a header one."""
    schemes = client.get("/api/v1/openapi.json").json()["components"]["securitySchemes"]
    assert schemes
    for scheme in schemes.values():
        assert scheme.get("in") != "cookie", scheme
    assert "csrf" not in client.get("/api/v1/docs").content.decode().lower()


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


# Contract section 5, verbatim: SDKs generated from the document expose these names.
OPERATION_IDS = {
    ("/api/v1/customers/", "post"): "createCustomer",
    ("/api/v1/customers/", "get"): "listCustomers",
    ("/api/v1/customers/{customer_id}/", "get"): "getCustomer",
    ("/api/v1/customers/{customer_id}/", "put"): "replaceCustomer",
    ("/api/v1/customers/{customer_id}/", "patch"): "updateCustomer",
    ("/api/v1/customers/{customer_id}/", "delete"): "deleteCustomer",
    ("/api/v1/orders/", "post"): "placeOrder",
    ("/api/v1/orders/", "get"): "listOrders",
    ("/api/v1/orders/{order_id}/", "get"): "getOrder",
    ("/api/v1/orders/{order_id}/sms/", "post"): "resendOrderSms",
    ("/api/v1/sms/delivery-reports/", "post"): "receiveDeliveryReport",
}


def test_operation_ids_are_the_contracts(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    served = {
        (path, method): operation["operationId"]
        for path, item in paths.items()
        for method, operation in item.items()
    }
    # Each listed operation that is served carries its contract name (the resend endpoint is
    # checked as soon as it exists), and nothing leaks a module path.
    expected = {key: name for key, name in OPERATION_IDS.items() if key in served}
    assert {key: served[key] for key in expected} == expected
    assert len(expected) >= len(OPERATION_IDS) - 1
    assert not [name for name in served.values() if "_" in name or "backend" in name]


def test_schema_names_carry_no_module_path(client):
    document = client.get("/api/v1/openapi.json").json()
    names = set(document["components"]["schemas"])
    assert {"CustomerIn", "OrderIn", "Problem", "DeliveryReportForm"} <= names
    assert not [name for name in names if name.startswith("Backend") or "." in name]
    # Every schema is named: no inline object a generator would name after the operation.
    text = json.dumps(document["paths"])
    assert '"type": "object"' not in text


def test_camel_case_names_new_operations_automatically():
    from backend.api.app import camel_case

    assert camel_case("resend_order_sms") == "resendOrderSms"
    assert camel_case("create_webhook_endpoint") == "createWebhookEndpoint"
    assert camel_case("ping") == "ping"


def test_quickstart_client_is_prefilled_on_the_docs_page(client, settings):
    """The quick start creates a client and then serves: its docs page must offer that client."""
    import re
    from io import StringIO

    from django.core.management import call_command

    settings.OIDC_CLIENT_ID = ""  # restored after the test, whatever the command sets
    out = StringIO()
    call_command("quickstart", no_serve=True, port=8124, stdout=out)
    client_id = re.search(r"client_id=(\S+)", out.getvalue()).group(1)
    page = client.get("/api/v1/docs").content.decode()
    embedded = re.search(
        r'<script type="application/json" id="swagger-settings">(.*?)</script>', page, re.S
    )
    assert json.loads(embedded.group(1))["dukaOAuth"]["clientId"] == client_id

"""The served OpenAPI document through a real generator: `openapi-python-client`.

The generated SDK must read like the contract (operation ids, schema names without module
paths) and must work: it drives create customer -> place order -> list -> a 422 through the real
generated code and its httpx client against a live server on 127.0.0.1.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fixtures.auth import API_SCOPES, builtin_token

pytestmark = pytest.mark.django_db(transaction=True)

PACKAGE = "duka_api_client"


@pytest.fixture
def generated(client, tmp_path: Path, monkeypatch):
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(client.get("/api/v1/openapi.json").json()))
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / PACKAGE),
        ],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # A warning means a piece of the document could not be turned into code.
    assert "Warning" not in result.stdout, result.stdout
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    yield tmp_path / PACKAGE
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def test_generated_client_names_follow_the_contract(generated: Path):
    modules = {
        path.relative_to(generated / "api").with_suffix("").as_posix()
        for path in (generated / "api").rglob("*.py")
        if path.name != "__init__.py"
    }
    assert {
        "customers/create_customer",
        "customers/list_customers",
        "customers/get_customer",
        "customers/replace_customer",
        "customers/update_customer",
        "customers/delete_customer",
        "orders/place_order",
        "orders/list_orders",
        "orders/get_order",
        "sms/receive_delivery_report",
    } <= modules
    models = {path.stem for path in (generated / "models").glob("*.py")}
    everything = modules | models
    assert not [name for name in everything if "backend" in name], sorted(everything)
    assert "delivery_report_form" in models


def test_generated_client_drives_the_api(generated: Path, live_server):
    api = importlib.import_module(f"{PACKAGE}.api")
    create_customer = importlib.import_module(f"{PACKAGE}.api.customers.create_customer")
    place_order = importlib.import_module(f"{PACKAGE}.api.orders.place_order")
    list_orders = importlib.import_module(f"{PACKAGE}.api.orders.list_orders")
    models = importlib.import_module(f"{PACKAGE}.models")
    client_module = importlib.import_module(PACKAGE)
    assert api is not None

    sdk = client_module.AuthenticatedClient(
        base_url=live_server.url,
        token=builtin_token(*API_SCOPES, sub="generated-client"),
        raise_on_unexpected_status=True,
        timeout=httpx.Timeout(30.0),
    )
    with sdk:
        created = create_customer.sync_detailed(
            client=sdk,
            body=models.CustomerIn(name="Wanjiru", code="SDK-1", phone_number="0712345678"),
        )
        assert created.status_code == 201
        customer = created.parsed
        assert isinstance(customer, models.CustomerOut)
        assert customer.phone_number == "+254712345678"

        placed = place_order.sync_detailed(
            client=sdk,
            body=models.OrderIn(customer_id=customer.id, item="Sugar 2kg", amount="350.00"),
        )
        assert placed.status_code == 201
        order = placed.parsed
        assert isinstance(order, models.OrderOut)
        assert order.customer_code == "SDK-1"
        assert placed.headers["Location"] == f"/api/v1/orders/{order.id}/"

        page = list_orders.sync(client=sdk, customer_id=customer.id)
        assert isinstance(page, models.OrderPage)
        assert [item.id for item in page.items] == [order.id]
        assert page.items[0].amount == "350.00"

        refused = place_order.sync_detailed(
            client=sdk,
            body=models.OrderIn(customer_id=customer.id + 1000, item="Salt", amount="10"),
        )
        assert refused.status_code == 422
        problem = refused.parsed
        assert isinstance(problem, models.Problem)
        assert problem.status == 422
        assert [list(error.loc) for error in problem.errors] == [["body", "customer_id"]]

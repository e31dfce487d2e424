"""The OpenAPI document declares what the API answers: errors, headers and links."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.test import Client

from backend.api.openapi import complete_openapi

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def served() -> dict[str, Any]:
    return Client().get("/api/v1/openapi.json").json()


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_served_document_is_complete(served: dict[str, Any]) -> None:
    """The app serves the document through `complete_openapi` (wired in `backend/api/app.py`)."""
    assert complete_openapi(copy.deepcopy(served)) == served


def test_completion_is_idempotent(served: dict[str, Any]) -> None:
    once = complete_openapi(copy.deepcopy(served))
    assert complete_openapi(copy.deepcopy(once)) == once


def test_every_error_is_problem_json() -> None:
    document = complete_openapi(Client().get("/api/v1/openapi.json").json())
    shared = document["components"]["responses"]
    for label, operation in _operations(document).items():
        statuses = set(operation["responses"])
        if operation.get("security"):
            assert {"401", "403"} <= statuses, label
        if "{" in label:
            assert "404" in statuses, label
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= statuses, label
        if operation.get("security") and label.split()[0] != "GET":
            assert {"409", "429"} <= statuses, label
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            ref = response.get("$ref", "")
            content = shared[ref.rsplit("/", 1)[-1]]["content"] if ref else response["content"]
            assert "application/problem+json" in content, (label, status)


def test_creates_document_idempotency_and_links() -> None:
    document = complete_openapi(Client().get("/api/v1/openapi.json").json())
    operations = _operations(document)
    for label, links in (
        (
            "POST /api/v1/customers/",
            {
                "GetCustomer",
                "ReplaceCustomer",
                "PatchCustomer",
                "DeleteCustomer",
                "PlaceOrder",
                "ListCustomerOrders",
            },
        ),
        ("POST /api/v1/orders/", {"GetOrder", "GetOrderCustomer", "ListCustomerOrders"}),
    ):
        operation = operations[label]
        names = [p["name"] for p in operation["parameters"]]
        assert "Idempotency-Key" in names, label
        created = operation["responses"]["201"]
        assert created["headers"]["Location"]["required"] is True
        assert set(created["links"]) == links
        ids = {op["operationId"] for op in operations.values()}
        assert {link["operationId"] for link in created["links"].values()} <= ids

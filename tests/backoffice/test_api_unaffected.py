"""The back-office's middleware (sessions, users, messages) costs the bearer-token API nothing:
no query, even when the request carries a signed-in back-office session cookie."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from backend.commands import customers

pytestmark = pytest.mark.django_db


def test_an_api_read_with_a_session_cookie_is_still_one_query(
    superuser: Client, all_scopes_headers, django_assert_num_queries
):
    customer_id = customers.create_customer(
        customers.CreateCustomer(name="Jane", code="JANE", phone_number="+254712345678")
    )
    assert superuser.cookies.get("sessionid")  # signed in: the cookie rides along below
    connection.ensure_connection()
    assert superuser.get("/api/v1/customers/?limit=1", **all_scopes_headers).status_code == 200

    with django_assert_num_queries(1):
        response = superuser.get(f"/api/v1/customers/{customer_id}/", **all_scopes_headers)

    assert response.status_code == 200
    assert "sessionid" not in response.cookies  # the session was never touched
    assert "Cookie" not in response.get("Vary", "")


def test_an_api_write_without_a_session_sets_no_cookie(client: Client, all_scopes_headers):
    response = client.post(
        "/api/v1/customers/",
        {"name": "Jane", "code": "JANE", "phone_number": "+254712345678"},
        content_type="application/json",
        **all_scopes_headers,
    )

    assert response.status_code == 201
    assert not response.cookies

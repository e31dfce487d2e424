"""Server-side binding and prepared statements on PostgreSQL (`DATABASE_PREPARED_STATEMENTS`).

With the setting on (the default), psycopg sends parameters apart from the SQL text and prepares
a statement once a connection has run it 5 times, so PostgreSQL stops parsing and planning the
hot reads and the order write on every request (docs/performance.md). Off, the connection is
Django's default (client-side binding, nothing prepared), which a transaction-pooling pgbouncer
needs. These tests check both ends: what the setting puts into DATABASES, that a connection so
configured really prepares (or does not), and that the hot requests answer the same bytes once
their statements are prepared.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections

from backend.settings import base
from tests.api.conftest import Api
from tests.cursors import unstamped

POSTGRES_URL = "postgres://duka@db.example:5432/duka"


@pytest.mark.parametrize("on", [True, False])
def test_the_setting_chooses_binding_and_preparing(monkeypatch, on):
    monkeypatch.setattr(base, "DATABASE_PREPARED_STATEMENTS", on)
    options = base._database(POSTGRES_URL)["OPTIONS"]
    if on:
        assert options["server_side_binding"] is True
        assert options["prepare_threshold"] == 5
    else:
        # Django's defaults: client-side binding, and Django passes prepare_threshold=None.
        assert "server_side_binding" not in options
        assert "prepare_threshold" not in options


def _prepared(cursor) -> list[str]:
    cursor.execute("SELECT statement FROM pg_prepared_statements WHERE NOT from_sql")
    return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def configured_connection(request, monkeypatch) -> Iterator:
    """A second connection to the test database whose OPTIONS come from `base._database`."""
    monkeypatch.setattr(base, "DATABASE_PREPARED_STATEMENTS", request.param)
    default = connections[DEFAULT_DB_ALIAS]
    settings_dict = copy.deepcopy(default.settings_dict)
    settings_dict["OPTIONS"] = base._database(POSTGRES_URL)["OPTIONS"]
    wrapper = type(default)(settings_dict, alias="prepared_statements_test")
    try:
        yield wrapper
    finally:
        wrapper.close()


@pytest.mark.django_db
@pytest.mark.parametrize("configured_connection", [True, False], indirect=True)
def test_a_connection_prepares_only_when_the_setting_is_on(configured_connection):
    on = configured_connection.settings_dict["OPTIONS"].get("prepare_threshold") is not None
    with configured_connection.cursor() as cursor:
        for n in range(6):  # one past the threshold
            cursor.execute("SELECT %s + 1 AS next_value", [n])
            assert cursor.fetchone() == (n + 1,)
        prepared = _prepared(cursor)
    if on:
        # The parameter travelled on its own ($1), and the statement is now prepared.
        assert prepared == ["SELECT $1 + 1 AS next_value"]
    else:
        assert prepared == []


@pytest.mark.django_db(transaction=True)
def test_hot_requests_answer_the_same_bytes_once_prepared(client, all_scopes_headers):
    """Each hot request run past the threshold on one connection: the statements behind it are
    then prepared, and the body is byte-for-byte the one the first (unprepared) run gave."""
    api = Api(client, all_scopes_headers)
    connection.ensure_connection()
    customer = api.post(
        "customers/", {"name": "Jane Wanjiru", "code": "JANE-1", "phone_number": "+254712345678"}
    )
    assert customer.status_code == 201, customer.content
    customer_id = customer.json()["id"]
    placed = []
    for n in range(7):
        response = api.post(
            "orders/", {"customer_id": customer_id, "item": f"Item {n}", "amount": "10.50"}
        )
        assert response.status_code == 201, response.content
        placed.append(response.json())
    assert [order["item"] for order in placed] == [f"Item {n}" for n in range(7)]
    assert len({order["id"] for order in placed}) == 7

    paths = [
        f"orders/{placed[0]['id']}/",
        "orders/?limit=50",
        "orders/?limit=3",
        f"customers/{customer_id}/",
        "customers/?limit=50",
    ]
    for path in paths:
        bodies = [api.get(path) for _ in range(7)]
        assert {response.status_code for response in bodies} == {200}
        assert {unstamped(response.content) for response in bodies} == {
            unstamped(bodies[0].content)
        }, path
    # A page past the first, through the cursor (its keyset predicate has three parameters).
    cursor = api.get("orders/?limit=3").json()["next_cursor"]
    pages = [api.get("orders/", QUERY_STRING=f"limit=3&cursor={cursor}") for _ in range(7)]
    assert {unstamped(page.content) for page in pages} == {unstamped(pages[0].content)}
    assert [item["item"] for item in pages[0].json()["items"]] == ["Item 3", "Item 2", "Item 1"]

    with connection.cursor() as db:
        prepared = "\n".join(_prepared(db))
    if connection.settings_dict["OPTIONS"].get("prepare_threshold") is None:
        assert prepared == ""  # run with DATABASE_PREPARED_STATEMENTS=0
        return
    # The order write's statements, the one-row read and both pages are among the prepared
    # statements of this connection.
    assert 'INSERT INTO "orders"' in prepared
    assert 'INSERT INTO "order_view"' in prepared
    assert 'FROM "order_view" WHERE "id" = $1' in prepared
    assert 'FROM "customer_view" ORDER BY "id" LIMIT $1' in prepared


@pytest.mark.django_db(transaction=True)
def test_page_sizes_share_one_prepared_statement(client, all_scopes_headers):
    """The page size is a parameter: a client walking through every `limit` makes one prepared
    statement per page shape, not one per limit (each held by the connection for its life)."""
    api = Api(client, all_scopes_headers)
    connection.ensure_connection()
    if connection.settings_dict["OPTIONS"].get("prepare_threshold") is None:
        pytest.skip("run with DATABASE_PREPARED_STATEMENTS=0: nothing is prepared")
    for limit in range(1, 41):
        for _ in range(6):  # past psycopg's threshold
            assert api.get(f"orders/?limit={limit}").status_code == 200
            assert api.get(f"customers/?limit={limit}").status_code == 200
    with connection.cursor() as db:
        db.execute(
            "SELECT count(*) FROM pg_prepared_statements"
            " WHERE NOT from_sql AND statement LIKE '%%LIMIT $%%'"
        )
        [(pages,)] = db.fetchall()
    assert pages == 2  # the orders page and the customers page

"""The web's `/metrics`: operation-aware route labels, Duka's own metrics, promtool-clean text.

Helpers here (`sample`, `promtool_check`) are shared by the gunicorn and worker metric tests.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from backend.commands.models import SmsNotification, SmsStatus
from tests.factories import make_customer, make_order


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by name and label set."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(text: str, name: str, **labels: str) -> float | None:
    """One sample's value: the series whose labels include `labels` (summed if several)."""
    found = [
        value
        for (sample_name, sample_labels), value in samples(text).items()
        if sample_name == name and set(labels.items()) <= set(sample_labels)
    ]
    return sum(found) if found else None


def promtool_check(text: str) -> None:
    """`promtool check metrics` on a scrape: exit 0 means no parse error and no lint problem."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package `prometheus`; .ci/run installs it)")
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def requests_total(text: str, view: str, method: str) -> float:
    return (
        sample(
            text,
            "django_http_requests_total_by_view_transport_method_total",
            view=view,
            method=method,
        )
        or 0.0
    )


@pytest.mark.django_db
def test_ninja_operations_on_one_path_are_distinct_series(client, all_scopes_headers):
    before = scrape(client)
    customer = make_customer()
    client.get("/api/v1/orders/", **all_scopes_headers)
    client.get("/api/v1/orders/", **all_scopes_headers)
    created = client.post(
        "/api/v1/orders/",
        {"customer_id": customer, "item": "Widget", "amount": "5.00"},
        content_type="application/json",
        **all_scopes_headers,
    )
    assert created.status_code == 201
    client.delete(f"/api/v1/customers/{customer}/", **all_scopes_headers)  # 409: it has orders
    after = scrape(client)

    def delta(view: str, method: str) -> float:
        return requests_total(after, view, method) - requests_total(before, view, method)

    assert delta("api-v1:list_orders", "GET") == 2
    assert delta("api-v1:create_order", "POST") == 1
    assert delta("api-v1:create_order", "GET") == 0  # Django's name for the path is not used
    assert delta("api-v1:delete_customer", "DELETE") == 1
    assert delta("api-v1:get_customer", "DELETE") == 0
    status = "django_http_responses_total_by_status_view_method_total"
    assert (sample(after, status, view="api-v1:delete_customer", status="409") or 0) >= 1
    # Views outside Ninja keep their URL names (the alerts exclude these).
    client.get("/healthz")
    assert requests_total(scrape(client), "healthz", "GET") >= 1
    assert requests_total(scrape(client), "prometheus-django-metrics", "GET") >= 1


@pytest.mark.django_db
def test_unknown_paths_and_wrong_methods_are_labelled_without_guessing(client):
    before = scrape(client)
    client.get("/no/such/path")
    client.put("/api/v1/orders/")  # 405: no operation for PUT on this path
    after = scrape(client)
    unnamed = "<unnamed view>"
    assert requests_total(after, unnamed, "GET") >= requests_total(before, unnamed, "GET")
    status = "django_http_responses_total_by_status_view_method_total"
    assert (sample(after, status, method="PUT", status="405") or 0) > (
        sample(before, status, method="PUT", status="405") or 0
    )


@pytest.mark.django_db(transaction=True)
def test_orders_created_counts_committed_orders_only(client, all_scopes_headers):
    def created() -> float:
        return sample(scrape(client), "duka_orders_created_total") or 0.0

    start = created()
    customer = make_customer()
    make_order(customer)
    assert created() == start + 1

    def rolled_back_order() -> None:
        with transaction.atomic():  # the order command's write, then the caller rolls back
            make_order(customer, item="Lost")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        rolled_back_order()
    assert created() == start + 1

    body = {"customer_id": customer, "item": "Kettle", "amount": "25.00"}
    headers = {**all_scopes_headers, "HTTP_IDEMPOTENCY_KEY": "metrics-test-order-1"}
    first = client.post("/api/v1/orders/", body, content_type="application/json", **headers)
    replay = client.post("/api/v1/orders/", body, content_type="application/json", **headers)
    assert first.status_code == replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    assert created() == start + 2  # the replay created nothing


@pytest.mark.django_db
def test_outbox_pending_is_read_from_the_database_at_scrape_time(client):
    def pending() -> float | None:
        return sample(scrape(client), "duka_outbox_pending")

    base = SmsNotification.objects.filter(status=SmsStatus.PENDING).count()
    assert pending() == base
    customer = make_customer()
    orders = [make_order(customer) for _ in range(3)]
    assert pending() == base + 3
    SmsNotification.objects.filter(order_id=orders[0]).update(
        status=SmsStatus.SENT, updated_at=timezone.now()
    )
    assert pending() == base + 2


def test_scrape_survives_an_unreachable_database(client):
    # No django_db mark: pytest-django refuses database access, as a dead database would.
    text = scrape(client)
    assert sample(text, "duka_outbox_pending") is None
    assert sample(text, "django_http_requests_before_middlewares_total") is not None


def test_metrics_endpoint_is_get_only(client):
    assert client.post("/metrics").status_code == 405


@pytest.mark.django_db
def test_web_scrape_passes_promtool(client, all_scopes_headers):
    client.get("/api/v1/orders/", **all_scopes_headers)
    client.get("/api/v1/orders/")  # 401
    make_order(make_customer())
    text = scrape(client)
    assert "duka_orders_created_total" in text
    assert "duka_outbox_pending" in text
    promtool_check(text)


def test_promtool_check_rejects_a_broken_exposition():
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (Debian package `prometheus`)")
    with pytest.raises(AssertionError):
        promtool_check("# TYPE broken counter\nbroken{le=} x\n")


# Every series django-prometheus' middleware and database wrapper write for one request, with
# the labels they write them under; ours (backend/observability/metrics.py, .../db) must move
# each of them exactly as much. The scrape in between is a GET answered 200 too, so the series
# without a view label move twice.
def _one_read_series(view: str) -> dict[str, tuple[dict[str, str], int]]:
    get = {"method": "GET"}
    return {
        "django_http_requests_before_middlewares_total": ({}, 2),
        "django_http_responses_before_middlewares_total": ({}, 2),
        "django_http_requests_latency_including_middlewares_seconds_count": ({}, 2),
        "django_http_requests_total_by_method_total": (get, 2),
        "django_http_requests_total_by_transport_total": ({"transport": "http"}, 2),
        "django_http_requests_body_total_bytes_count": ({}, 2),
        "django_http_requests_total_by_view_transport_method_total": (
            {"view": view, "transport": "http", **get},
            1,
        ),
        "django_http_responses_total_by_status_total": ({"status": "200"}, 2),
        "django_http_responses_total_by_status_view_method_total": (
            {"status": "200", "view": view, **get},
            1,
        ),
        "django_http_responses_total_by_charset_total": ({"charset": "utf-8"}, 2),
        "django_http_responses_body_total_bytes_count": ({}, 2),
        "django_http_requests_latency_seconds_by_view_method_count": ({"view": view, **get}, 1),
    }


@pytest.mark.django_db
def test_one_read_moves_every_request_series_once_and_counts_its_query(client, all_scopes_headers):
    order = make_order(make_customer())
    path = f"/api/v1/orders/{order}/"
    client.get(path, **all_scopes_headers)  # the connection and every series exist from here
    first = scrape(client)
    before = scrape(client)
    response = client.get(path, **all_scopes_headers)
    assert response.status_code == 200
    after = scrape(client)
    for name, (labels, expected) in _one_read_series("api-v1:get_order").items():
        moved = (sample(after, name, **labels) or 0) - (sample(before, name, **labels) or 0)
        assert moved == expected, name

    db = {"alias": "default", "vendor": "postgresql"}

    def statements(name: str, start: str, end: str) -> float:
        return sample(end, name, **db) - sample(start, name, **db)

    # A scrape runs statements of its own (the outbox count); the read adds exactly its one.
    for name in ("django_db_execute_total", "django_db_query_duration_seconds_count"):
        assert statements(name, before, after) == statements(name, first, before) + 1, name


@pytest.mark.django_db
def test_failed_statements_are_counted_by_error_type(client):
    def errors() -> float:
        # psycopg's exception, as django-prometheus records it (Django wraps it afterwards).
        labels = {"alias": "default", "vendor": "postgresql", "type": "UndefinedTable"}
        return sample(scrape(client), "django_db_errors_total", **labels) or 0.0

    start = errors()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_here")
    assert errors() == start + 1

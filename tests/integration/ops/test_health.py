import socket

import pytest


def test_healthz_needs_no_database(client):
    # No django_db mark: any database access here would fail the test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_with_everything_up(client, settings):
    settings.REDIS_URL = None
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db
def test_readyz_names_the_broker_when_it_is_down(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert "broker" in response.json()["detail"]
    assert "database" not in response.json()["detail"]
    assert response["Retry-After"]


@pytest.mark.django_db
def test_readyz_names_the_database_when_it_is_down(client, settings, monkeypatch):
    from backend import health

    def down() -> None:
        raise OSError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", down)
    settings.REDIS_URL = None
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "database" in response.json()["detail"]


def test_health_endpoints_refuse_other_methods(client):
    assert client.post("/healthz").status_code == 405

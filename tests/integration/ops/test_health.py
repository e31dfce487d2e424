import socket
import time

import pytest


def settled_readyz(client, timeout: float = 10.0):
    """/readyz once the background broker probe has reported (the view itself never waits)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/readyz")
        if response.json().get("checks", {}).get("broker") != "unknown":
            return response
        assert time.monotonic() < deadline, "the broker probe never reported"
        time.sleep(0.05)


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
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_readyz_with_the_real_redis_up(client, settings, redis_url):
    settings.REDIS_URL = redis_url
    response = settled_readyz(client)
    assert response.status_code == 200
    assert response.json()["checks"]["broker"] == "ok"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db
def test_readyz_stays_ready_when_the_broker_is_down(client, settings):
    # Contract §5: orders are accepted while the broker is down, so the pod stays in the Service.
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = settled_readyz(client)
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "checks": {"database": "ok", "broker": "down"},
    }


@pytest.mark.django_db
def test_readyz_names_the_database_when_it_is_down(client, settings, monkeypatch):
    from backend import health

    def down() -> None:
        raise OSError("connection refused")

    monkeypatch.setitem(health.REQUIRED, "database", down)
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"]
    assert "database" in response.json()["detail"]
    assert "broker" not in response.json()["detail"]


@pytest.mark.django_db
def test_metrics_report_the_broker_state(client, settings, redis_url):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    assert "duka_broker_up 0.0" in client.get("/metrics").content.decode()
    settings.REDIS_URL = redis_url
    assert "duka_broker_up 1.0" in client.get("/metrics").content.decode()


def test_health_endpoints_refuse_other_methods(client):
    assert client.post("/healthz").status_code == 405

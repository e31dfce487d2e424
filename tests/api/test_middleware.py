import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("method", ["put", "get", "delete"])
def test_bodiless_errors_under_the_issuer_become_problems(client, method):
    response = getattr(client, method)("/o/token/")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 405
    assert "POST" in response["Allow"]


def test_oauth_errors_keep_their_rfc6749_shape(client):
    response = client.post("/o/token/", {"grant_type": "client_credentials"})
    assert response.status_code in (400, 401)
    assert "error" in response.json()
    assert response["Content-Type"].startswith("application/json")


def test_content_length_must_be_a_number(client):
    response = client.generic(
        "POST", "/api/v1/customers/", b"{}", CONTENT_LENGTH="abc", CONTENT_TYPE="application/json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"

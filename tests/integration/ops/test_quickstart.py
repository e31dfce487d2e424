import base64
import re
from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_quickstart_prints_a_working_token_command(client):
    out = StringIO()
    call_command("quickstart", no_serve=True, port=8123, stdout=out)
    text = out.getvalue()
    match = re.search(
        r"curl -s -u '?([^:' ]+):([^' ]+)'? -d grant_type=client_credentials -d scope='([^']+)' (\S+)",
        text,
    )
    assert match, text
    client_id, secret, scope, url = match.groups()
    assert url == "http://localhost:8123/o/token/"
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    token = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": scope},
        HTTP_AUTHORIZATION=f"Basic {basic}",
    ).json()["access_token"]
    assert "/api/v1/customers/" in text
    response = client.get("/api/v1/customers/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200


@pytest.mark.django_db
def test_quickstart_prints_the_back_office_and_how_to_sign_in(client, django_user_model):
    out = StringIO()
    call_command("quickstart", no_serve=True, port=8123, stdout=out)
    text = out.getvalue()
    assert "Back-office: http://localhost:8123/admin/" in text
    assert "uv run python manage.py createsuperuser" in text
    # The page it names is the back-office's login page.
    assert client.get("/admin/").url.startswith("/admin/login/")

"""API clients of the built-in issuer: create with scopes, rotate the secret (shown once), revoke;
each checked against the real token endpoint."""

from __future__ import annotations

import base64
import re

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION
from django.contrib.auth.hashers import identify_hasher
from django.test import Client
from oauth2_provider.models import get_access_token_model, get_application_model

from backend.issuer.clients import create_client
from backend.issuer.hashers import ALGORITHM
from backend.issuer.models import ClientScopes
from tests.backoffice.conftest import audit, messages_of, page_text

pytestmark = pytest.mark.django_db

CLIENTS = "/admin/backoffice/apiclient/"


def token_status(client_id: str, secret: str) -> int:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = Client().post(
        "/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=f"Basic {basic}"
    )
    return response.status_code


def shown_secrets(response) -> dict[str, str]:
    """client_id -> secret as the one-time page shows them."""
    html = response.content.decode()
    ids = re.findall(r'<code class="client-id">([^<]+)</code>', html)
    secrets = re.findall(r'class="vTextField client-secret"[^>]* value="([^"]+)"', html)
    return dict(zip(ids, secrets, strict=True))


def test_create_with_scopes_shows_the_secret_once_and_stores_it_hashed(operator: Client):
    response = operator.post(
        f"{CLIENTS}add/", {"name": " reporting ", "scopes": ["orders:read", "customers:read"]}
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    [(client_id, secret)] = shown_secrets(response).items()
    application = get_application_model().objects.get(client_id=client_id)
    assert application.name == "reporting"
    assert identify_hasher(application.client_secret).algorithm == ALGORITHM
    assert secret not in application.client_secret
    assert ClientScopes.objects.get(application=application).as_list() == [
        "orders:read",
        "customers:read",
    ]
    assert token_status(client_id, secret) == 200
    # Never again: not on its page, not in the list.
    assert secret not in operator.get(f"{CLIENTS}{application.pk}/change/").content.decode()
    assert secret not in operator.get(CLIENTS).content.decode()
    [entry] = audit(object_id=str(application.pk))
    assert (entry.action_flag, entry.user.username) == (ADDITION, "otto")


def test_create_needs_a_name_and_a_scope(operator: Client):
    response = operator.post(f"{CLIENTS}add/", {"name": "  ", "scopes": []})

    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"name", "scopes"}
    assert not get_application_model().objects.exists()


def test_rotate_asks_first_then_shows_the_new_secret_once(operator: Client):
    client_id, old = create_client(name="shop", scopes="orders:write")
    pk = get_application_model().objects.get(client_id=client_id).pk

    asked = operator.post(CLIENTS, {"action": "rotate_secret", "_selected_action": [pk]})

    assert "stops working at once" in page_text(asked)
    assert token_status(client_id, old) == 200  # nothing changed yet

    done = operator.post(
        CLIENTS, {"action": "rotate_secret", "_selected_action": [pk], "confirm": "yes"}
    )

    new = shown_secrets(done)[client_id]
    assert new != old
    assert "no-store" in done["Cache-Control"]
    assert token_status(client_id, old) == 401
    assert token_status(client_id, new) == 200
    [entry] = audit(object_id=str(pk))
    assert (entry.action_flag, entry.change_message) == (CHANGE, "Rotated the secret.")


def test_revoke_asks_first_then_deletes_the_client_and_its_tokens(operator: Client):
    client_id, secret = create_client(name="old integration", scopes="orders:read")
    pk = get_application_model().objects.get(client_id=client_id).pk
    assert token_status(client_id, secret) == 200

    operator.post(CLIENTS, {"action": "revoke", "_selected_action": [pk]})
    assert get_application_model().objects.filter(pk=pk).exists()

    done = operator.post(
        CLIENTS, {"action": "revoke", "_selected_action": [pk], "confirm": "yes"}, follow=True
    )

    assert any("Revoked 1" in m for m in messages_of(done))
    assert not get_application_model().objects.filter(pk=pk).exists()
    assert not get_access_token_model().objects.filter(application_id=pk).exists()
    assert token_status(client_id, secret) == 401
    [entry] = audit(object_id=str(pk))
    assert (entry.action_flag, entry.object_repr) == (DELETION, f"old integration ({client_id})")
    listing = operator.get("/admin/backoffice/auditentry/").content.decode()
    assert f"old integration ({client_id})" in listing
    assert f"/admin/backoffice/apiclient/{pk}/" not in listing  # no link to what is gone


def test_a_viewer_sees_clients_but_cannot_create_rotate_or_revoke(viewer: Client):
    client_id, secret = create_client(name="shop", scopes="orders:write")
    pk = get_application_model().objects.get(client_id=client_id).pk

    listing = viewer.get(CLIENTS)
    add = viewer.post(f"{CLIENTS}add/", {"name": "x", "scopes": ["orders:read"]})
    for action in ("rotate_secret", "revoke"):
        viewer.post(CLIENTS, {"action": action, "_selected_action": [pk], "confirm": "yes"})

    assert client_id in listing.content.decode()
    assert b'name="action"' not in listing.content
    assert add.status_code == 403
    assert token_status(client_id, secret) == 200
    assert get_application_model().objects.count() == 1
    assert audit() == []

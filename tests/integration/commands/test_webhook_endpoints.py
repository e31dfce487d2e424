"""The webhook endpoint cap holds under concurrency: creates of one subject are serialised (an
advisory lock per owner, held until commit), so two concurrent creates cannot both see room."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import OperationalError, connection, connections

from backend.commands import webhook_endpoints
from backend.commands.models import WebhookEndpoint
from backend.errors import TooManyWebhookEndpoints

pytestmark = pytest.mark.django_db


@contextmanager
def creating_for(owner: str) -> Iterator[None]:
    """Another session in the middle of a create for `owner` (it holds the owner's lock)."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_lock(hashtext('webhook_endpoints'), hashtext(%s))", [owner]
            )
        yield
    finally:
        other.close()  # ends the session, and its lock


def create(owner: str) -> int:
    return webhook_endpoints.create_webhook_endpoint(
        webhook_endpoints.CreateWebhookEndpoint(
            owner=owner, url="http://127.0.0.1:9/hooks", events=["order.created"]
        )
    )


def test_a_create_waits_for_another_create_of_the_same_subject(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    with connection.cursor() as cursor:
        cursor.execute(
            "SET lock_timeout = '300ms'"
        )  # waiting is refused quickly, not tested by time
    try:
        with creating_for("alice"):
            with pytest.raises(OperationalError, match="lock timeout"):
                create("alice")
            assert not WebhookEndpoint.objects.filter(owner="alice").exists()
            create("bob")  # other subjects are not held up
        create("alice")  # once the other create is done
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert WebhookEndpoint.objects.filter(owner="alice").count() == 1


def test_deleted_and_other_subjects_endpoints_do_not_count(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOKS_MAX_ENDPOINTS = 1
    first = create("alice")
    with pytest.raises(TooManyWebhookEndpoints, match="at most 1 webhook"):
        create("alice")
    create("bob")
    webhook_endpoints.delete_webhook_endpoint(first, owner="alice")
    create("alice")
    with pytest.raises(TooManyWebhookEndpoints):
        create("alice")
    # Disabled ones still count: they exist, and a ping still reaches them.
    WebhookEndpoint.objects.filter(owner="bob").update(enabled=False)
    with pytest.raises(TooManyWebhookEndpoints):
        create("bob")

"""Webhook endpoints on the write side: create, delete, ping (docs/webhooks.md). The events and
their deliveries are the outbox's webhook channel (`backend.commands.outbox.webhook_deliveries`).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from backend.commands.models import WebhookEndpoint
from backend.commands.outbox import webhook_deliveries
from backend.errors import InvalidField, NotFound
from backend.integrations.webhooks import UnsafeUrl, check_url
from backend.notifications import events


@dataclass(frozen=True, kw_only=True)
class CreateWebhookEndpoint:
    url: str
    events: list[str]
    description: str = ""


def new_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (Standard Webhooks' secret format)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@transaction.atomic(durable=True)
def create_webhook_endpoint(cmd: CreateWebhookEndpoint) -> int:
    """Precondition: `events` are known types (the API validates). The URL is checked against
    the SSRF rules here, and again before every connection."""
    try:
        check_url(cmd.url)
    except UnsafeUrl as exc:
        raise InvalidField("url", f"The URL {exc}.") from None
    endpoint = WebhookEndpoint.objects.create(
        url=cmd.url,
        events=list(dict.fromkeys(cmd.events)),
        description=cmd.description,
        secret=new_secret(),
        created_at=timezone.now(),
    )
    return endpoint.pk


def _live(endpoint_id: int) -> WebhookEndpoint:
    endpoint = (
        WebhookEndpoint.objects.select_for_update()
        .filter(pk=endpoint_id, deleted_at__isnull=True)
        .first()
    )
    if endpoint is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} does not exist.")
    return endpoint


@transaction.atomic(durable=True)
def delete_webhook_endpoint(endpoint_id: int) -> None:
    """Marks it deleted; its pending events are dropped when the worker reaches them."""
    endpoint = _live(endpoint_id)
    endpoint.deleted_at = timezone.now()
    endpoint.enabled = False
    endpoint.save(update_fields=["deleted_at", "enabled"])


def get_secret(endpoint_id: int) -> str:
    """The signing secret, for the create response only (it is never shown again)."""
    return WebhookEndpoint.objects.values_list("secret", flat=True).get(pk=endpoint_id)


@transaction.atomic(durable=True)
def ping_webhook_endpoint(endpoint_id: int) -> str:
    """Queue a `webhook.ping` event to this endpoint (enabled or not: a ping after fixing the
    receiver shows whether it works). Returns the event id."""
    endpoint = _live(endpoint_id)
    now = timezone.now()
    event_id = events.new_event_id()
    body = events.event_body(
        event_type=events.PING,
        occurred_at=now,
        data={"endpoint_id": endpoint.pk, "url": endpoint.url},
    )
    webhook_deliveries.add_deliveries(
        [endpoint.pk],
        event_id=event_id,
        event_type=events.PING,
        subject=f"endpoint:{endpoint.pk}",
        body=body,
        now=now,
    )
    return event_id

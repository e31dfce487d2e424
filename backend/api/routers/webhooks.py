"""Webhook endpoints (contract section 9), all with the `webhooks:manage` scope."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from backend.api import rendering
from backend.api.auth import require
from backend.api.schemas.common import Cursor, Limit
from backend.api.schemas.webhooks import (
    WebhookEndpointCreated,
    WebhookEndpointIn,
    WebhookEndpointOut,
    WebhookEndpointPage,
    WebhookPingAccepted,
)
from backend.api.throttling import write_limit
from backend.commands import webhook_endpoints as commands
from backend.queries import webhooks as queries
from backend.queries.webhooks import WebhookEndpointRead

router = Router(tags=["webhooks"])
MANAGE = require("webhooks:manage")


def _body(view: WebhookEndpointRead) -> dict[str, object]:
    return {
        "id": view.id,
        "url": view.url,
        "events": view.events,
        "description": view.description,
        "enabled": view.enabled,
        "disabled_reason": view.disabled_reason,
        "created_at": rendering.timestamp(view.created_at),
        "last_attempt_at": rendering.timestamp(view.last_attempt_at),
        "last_error": view.last_error,
    }


@router.post(
    "/",
    response={201: WebhookEndpointCreated},
    auth=MANAGE,
    throttle=write_limit,
    url_name="create_webhook_endpoint",
)
def create_webhook_endpoint(request: HttpRequest, payload: WebhookEndpointIn) -> HttpResponse:
    """Subscribe a URL to event types. The response carries the signing `secret`, shown only
    here: keep it to verify the `webhook-signature` header."""
    endpoint_id = commands.create_webhook_endpoint(
        commands.CreateWebhookEndpoint(
            url=payload.url, events=list(payload.events), description=payload.description
        )
    )
    body = {
        **_body(queries.get_webhook_endpoint(endpoint_id)),
        "secret": commands.get_secret(endpoint_id),
    }
    response = rendering.json_response(body, status=201)
    response["Location"] = f"/api/v1/webhooks/{endpoint_id}/"
    response["Cache-Control"] = "no-store"
    return response


@router.get("/", response=WebhookEndpointPage, auth=MANAGE, url_name="list_webhook_endpoints")
def list_webhook_endpoints(
    request: HttpRequest, cursor: Cursor | None = None, limit: Limit = 50
) -> HttpResponse:
    """Endpoints by ascending id."""
    page = queries.list_webhook_endpoints(cursor=cursor, limit=limit)
    return rendering.json_response(rendering.page(page, _body))


@router.get(
    "/{id:endpoint_id}/",
    response=WebhookEndpointOut,
    auth=MANAGE,
    url_name="get_webhook_endpoint",
)
def get_webhook_endpoint(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """With `enabled`/`disabled_reason`, and the last attempt's time and error."""
    return rendering.json_response(_body(queries.get_webhook_endpoint(endpoint_id)))


@router.delete(
    "/{id:endpoint_id}/",
    response={204: None},
    auth=MANAGE,
    throttle=write_limit,
    url_name="delete_webhook_endpoint",
)
def delete_webhook_endpoint(request: HttpRequest, endpoint_id: int) -> Status:
    """Stop sending to this endpoint; events not yet delivered to it are dropped."""
    commands.delete_webhook_endpoint(endpoint_id)
    return Status(204, None)


@router.post(
    "/{id:endpoint_id}/ping/",
    response={202: WebhookPingAccepted},
    auth=MANAGE,
    throttle=write_limit,
    url_name="ping_webhook_endpoint",
)
def ping_webhook_endpoint(request: HttpRequest, endpoint_id: int) -> Status:
    """Queue a signed `webhook.ping` event to this endpoint (delivered like any event)."""
    return Status(202, {"event_id": commands.ping_webhook_endpoint(endpoint_id)})

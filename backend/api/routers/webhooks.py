"""Webhook endpoints (contract section 9), all with the `webhooks:manage` scope.

Each endpoint belongs to the token subject that created it (another subject gets a 404 and does
not list it); subscribing to an event type also needs the read scope of what it carries; the URL
is shown whole only in the 201.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from backend.api import rendering
from backend.api.auth import require, require_also, subject_of
from backend.api.schemas.common import Cursor, Limit
from backend.api.schemas.webhooks import (
    READ_SCOPE_OF_EVENT,
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
        "url": view.public_url,
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
    """Subscribe a URL to event types (each also needs the read scope of what it carries:
    `customers:read` for `customer.*`, `orders:read` for `order.*`). The response carries the
    signing `secret` and the whole `url`, shown only here: keep the secret to verify the
    `webhook-signature` header. A token subject may have WEBHOOKS_MAX_ENDPOINTS endpoints (10
    by default): one more is a 422 `too-many-webhook-endpoints`."""
    require_also(request, (READ_SCOPE_OF_EVENT[event] for event in payload.events))
    owner = subject_of(request)
    endpoint_id = commands.create_webhook_endpoint(
        commands.CreateWebhookEndpoint(
            owner=owner,
            url=payload.url,
            events=list(payload.events),
            description=payload.description,
        )
    )
    view = queries.get_webhook_endpoint(endpoint_id, owner=owner)
    body = {**_body(view), "url": view.url, "secret": commands.get_secret(endpoint_id)}
    response = rendering.json_response(body, status=201)
    response["Location"] = f"/api/v1/webhooks/{endpoint_id}/"
    response["Cache-Control"] = "no-store"
    return response


@router.get("/", response=WebhookEndpointPage, auth=MANAGE, url_name="list_webhook_endpoints")
def list_webhook_endpoints(
    request: HttpRequest, cursor: Cursor | None = None, limit: Limit = 50
) -> HttpResponse:
    """The caller's endpoints by ascending id."""
    page = queries.list_webhook_endpoints(owner=subject_of(request), cursor=cursor, limit=limit)
    return rendering.json_response(rendering.page(page, _body))


@router.get(
    "/{id:endpoint_id}/",
    response=WebhookEndpointOut,
    auth=MANAGE,
    url_name="get_webhook_endpoint",
)
def get_webhook_endpoint(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """With `enabled`/`disabled_reason`, and the last attempt's time and error."""
    view = queries.get_webhook_endpoint(endpoint_id, owner=subject_of(request))
    return rendering.json_response(_body(view))


@router.delete(
    "/{id:endpoint_id}/",
    response={204: None},
    auth=MANAGE,
    throttle=write_limit,
    url_name="delete_webhook_endpoint",
)
def delete_webhook_endpoint(request: HttpRequest, endpoint_id: int) -> Status:
    """Stop sending to this endpoint; events not yet delivered to it are dropped."""
    commands.delete_webhook_endpoint(endpoint_id, owner=subject_of(request))
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
    event_id = commands.ping_webhook_endpoint(endpoint_id, owner=subject_of(request))
    return Status(202, {"event_id": event_id})

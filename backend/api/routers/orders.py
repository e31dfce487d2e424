from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from backend.api import conditional, idempotency, rendering
from backend.api.auth import require
from backend.api.schemas.common import AwareDatetime, Cursor, Limit, ResourceId
from backend.api.schemas.orders import OrderIn, OrderOut, OrderPage, SmsStatus
from backend.api.throttling import write_limit
from backend.commands import orders as commands
from backend.queries import orders as queries
from backend.queries.etags import tag

router = Router(tags=["orders"])
READ = require("orders:read")
WRITE = require("orders:write")


def _location(order_id: int) -> str:
    return f"/api/v1/orders/{order_id}/"


def _render(order_id: int) -> bytes:
    return queries.get_order(order_id)


def _created(order: OrderOut) -> idempotency.Created:
    """The 201 body from the values the command wrote (the same bytes a read-back gives)."""
    return idempotency.Created(order.id, order.body())


@router.post(
    "/", response={201: OrderOut}, auth=WRITE, throttle=write_limit, url_name="create_order"
)
def place_order(request: HttpRequest, payload: OrderIn) -> HttpResponse:
    """Place an order; the customer's SMS is queued in the same transaction and sent asynchronously."""
    return idempotency.create(
        request,
        endpoint="orders.create",
        payload=payload,
        execute=lambda claim: _created(
            commands.place_order(commands.PlaceOrder(**payload.dict()), idempotency=claim)
        ),
        render=_render,
        location=_location,
    )


@router.get("/", response=OrderPage, auth=READ, url_name="list_orders")
def list_orders(
    request: HttpRequest,
    customer_id: ResourceId | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    sms_status: SmsStatus | None = None,
    cursor: Cursor | None = None,
    limit: Limit = 50,
) -> HttpResponse:
    """Orders newest first. `since` is inclusive and `until` exclusive (RFC 3339);
    `sms_status=failed` lists the orders whose SMS needs attention (see `sms_error`)."""
    body = queries.list_orders(
        customer_id=customer_id,
        since=since,
        until=until,
        sms_status=sms_status,
        cursor=cursor,
        limit=limit,
    )
    return rendering.json_response(body)


@router.get("/{id:order_id}/", response=OrderOut, auth=READ, url_name="get_order")
def get_order(request: HttpRequest, order_id: int) -> HttpResponse:
    """With a strong `ETag` (it changes with `sms_status`); `If-None-Match` naming it is a 304
    without a body: cheap polling."""
    body = _render(order_id)
    return conditional.representation(request, body, tag(body))


@router.post(
    "/{id:order_id}/sms/",
    response={202: OrderOut},
    auth=WRITE,
    throttle=write_limit,
    url_name="resend_order_sms",
)
def resend_order_sms(request: HttpRequest, order_id: int) -> HttpResponse:
    """Send a failed SMS notification again: one new attempt cycle is queued (202, the order
    with `sms_status: "pending"`). A notification that has not failed is a 409, so one call
    never queues more than one SMS. Honours `Idempotency-Key`."""
    return idempotency.create(
        request,
        endpoint=f"orders.{order_id}.sms",
        payload=None,
        execute=lambda claim: commands.resend_order_sms(
            commands.ResendOrderSms(order_id=order_id), idempotency=claim
        ),
        render=_render,
        location=None,
        status=202,
    )

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from backend.api import conditional, idempotency, rendering
from backend.api.auth import require
from backend.api.schemas.common import CodeFilter, Cursor, Limit, QueryText
from backend.api.schemas.customers import CustomerIn, CustomerOut, CustomerPage, CustomerPatch
from backend.api.throttling import write_limit
from backend.commands import customers as commands
from backend.queries import customers as queries
from backend.queries.etags import tag

router = Router(tags=["customers"])
READ = require("customers:read")
WRITE = require("customers:write")


def _location(customer_id: int) -> str:
    return f"/api/v1/customers/{customer_id}/"


def _render(customer_id: int) -> bytes:
    return queries.get_customer(customer_id)


@router.post(
    "/", response={201: CustomerOut}, auth=WRITE, throttle=write_limit, url_name="create_customer"
)
def create_customer(request: HttpRequest, payload: CustomerIn) -> HttpResponse:
    """Create a customer. Send `Idempotency-Key` to make retries safe."""
    return idempotency.create(
        request,
        endpoint="customers.create",
        payload=payload,
        execute=lambda claim: commands.create_customer(
            commands.CreateCustomer(**payload.dict()), idempotency=claim
        ),
        render=_render,
        location=_location,
    )


@router.get("/", response=CustomerPage, auth=READ, url_name="list_customers")
def list_customers(
    request: HttpRequest,
    code: CodeFilter | None = None,
    search: QueryText | None = None,
    cursor: Cursor | None = None,
    limit: Limit = 50,
) -> HttpResponse:
    """Customers by ascending id. `code` is an exact match and `search` a substring of name or code, both ignoring case."""
    body = queries.list_customers(code=code, search=search, cursor=cursor, limit=limit)
    return rendering.json_response(body)


@router.get("/{id:customer_id}/", response=CustomerOut, auth=READ, url_name="get_customer")
def get_customer(request: HttpRequest, customer_id: int) -> HttpResponse:
    """With a strong `ETag`; `If-None-Match` naming it is a 304 without a body."""
    body = _render(customer_id)
    return conditional.representation(request, body, tag(body))


def _updated(customer_id: int) -> HttpResponse:
    body = _render(customer_id)
    return conditional.tagged(rendering.json_response(body), tag(body))


@router.put(
    "/{id:customer_id}/",
    response=CustomerOut,
    auth=WRITE,
    throttle=write_limit,
    url_name="replace_customer",
)
def replace_customer(request: HttpRequest, customer_id: int, payload: CustomerIn) -> HttpResponse:
    """Replace every field; all are required. `If-Match` (an ETag list or `*`) makes it conditional:
    no match is a 412 and changes nothing."""
    commands.replace_customer(
        commands.ReplaceCustomer(customer_id=customer_id, **payload.dict()),
        if_match=conditional.if_match(request),
    )
    return _updated(customer_id)


@router.patch(
    "/{id:customer_id}/",
    response=CustomerOut,
    auth=WRITE,
    throttle=write_limit,
    url_name="update_customer",
)
def update_customer(request: HttpRequest, customer_id: int, payload: CustomerPatch) -> HttpResponse:
    """Change any subset of the fields. `If-Match` as for PUT."""
    commands.patch_customer(
        commands.PatchCustomer(customer_id=customer_id, **payload.dict(exclude_unset=True)),
        if_match=conditional.if_match(request),
    )
    return _updated(customer_id)


@router.delete(
    "/{id:customer_id}/",
    response={204: None},
    auth=WRITE,
    throttle=write_limit,
    url_name="delete_customer",
)
def delete_customer(request: HttpRequest, customer_id: int) -> Status:
    """Delete a customer without orders (409 otherwise). Its code may then be reused. `If-Match`
    as for PUT."""
    commands.delete_customer(
        commands.DeleteCustomer(customer_id=customer_id), if_match=conditional.if_match(request)
    )
    return Status(204, None)

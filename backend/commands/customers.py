"""Customer command handlers: each is one transaction that writes the table and its projection."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction

from backend import projections
from backend.commands.clock import now_ms
from backend.commands.idempotency import IdempotencyClaim, complete_claim
from backend.commands.models import Customer
from backend.commands.outbox import webhook_deliveries
from backend.commands.phone import normalize_phone_number
from backend.commands.transactions import handler
from backend.errors import (
    CustomerHasOrders,
    DuplicateCode,
    InvalidField,
    NotFound,
    PreconditionFailed,
)
from backend.queries.customers import get_customer
from backend.queries.etags import tag

# `If-Match` as parsed entity tags (`"..."` or `*`); None when the request had no `If-Match`.
IfMatch = frozenset[str] | None


@dataclass(frozen=True, kw_only=True)
class CreateCustomer:
    name: str
    code: str
    phone_number: str


@dataclass(frozen=True, kw_only=True)
class ReplaceCustomer:
    customer_id: int
    name: str
    code: str
    phone_number: str


@dataclass(frozen=True, kw_only=True)
class PatchCustomer:
    """Fields left as None are unchanged."""

    customer_id: int
    name: str | None = None
    code: str | None = None
    phone_number: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeleteCustomer:
    customer_id: int


def _phone(raw: str) -> str:
    try:
        return normalize_phone_number(raw)
    except ValueError as exc:
        raise InvalidField("phone_number", str(exc)) from None


def _save(customer: Customer, *, created: bool) -> None:
    """Write the row inside a savepoint so a duplicate code becomes a 409, not a broken transaction."""
    try:
        with transaction.atomic():
            customer.save(force_insert=created, force_update=not created)
    except IntegrityError:
        raise DuplicateCode(f"A customer with code {customer.code!r} already exists.") from None
    projections.apply_customer_saved(
        customer_id=customer.pk,
        name=customer.name,
        code=customer.code,
        phone_number=customer.phone_number,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
        created=created,
    )


@handler
def create_customer(cmd: CreateCustomer, *, idempotency: IdempotencyClaim | None = None) -> int:
    now = now_ms()
    customer = Customer(
        name=cmd.name.strip(),
        code=cmd.code,
        phone_number=_phone(cmd.phone_number),
        created_at=now,
        updated_at=now,
    )
    _save(customer, created=True)
    webhook_deliveries.record_customer_event("customer.created", customer.pk)
    if idempotency is not None:
        complete_claim(idempotency, resource_id=customer.pk)
    return customer.pk


def _locked(customer_id: int, *, if_match: IfMatch = None) -> Customer:
    """Lock the row, then check `If-Match` against it: with the lock held, the tag compared is the
    one this write replaces, so of two editors sending the same tag only the first wins.

    An unknown id is a 404 whatever `If-Match` says (RFC 9110 13.2.1: preconditions are ignored
    when the answer would not be 2xx without them)."""
    try:
        customer = Customer.objects.select_for_update().get(pk=customer_id)
    except Customer.DoesNotExist:
        raise NotFound(f"Customer {customer_id} does not exist.") from None
    # Orders lock this row too before updating its read model, so the view read here is stable.
    if if_match is not None and "*" not in if_match:
        current = tag(get_customer(customer_id))
        if current not in if_match:
            raise PreconditionFailed(
                f"If-Match does not name the current ETag of customer {customer_id} ({current}); "
                "nothing was changed. GET it again and retry with the new ETag."
            )
    return customer


@handler
def replace_customer(cmd: ReplaceCustomer, *, if_match: IfMatch = None) -> int:
    return _update(
        cmd.customer_id,
        name=cmd.name,
        code=cmd.code,
        phone_number=cmd.phone_number,
        if_match=if_match,
    )


@handler
def patch_customer(cmd: PatchCustomer, *, if_match: IfMatch = None) -> int:
    return _update(
        cmd.customer_id,
        name=cmd.name,
        code=cmd.code,
        phone_number=cmd.phone_number,
        if_match=if_match,
    )


def _update(
    customer_id: int,
    *,
    name: str | None,
    code: str | None,
    phone_number: str | None,
    if_match: IfMatch,
) -> int:
    """Precondition: inside a command's transaction. None leaves a field unchanged."""
    customer = _locked(customer_id, if_match=if_match)
    if name is not None:
        customer.name = name.strip()
    if code is not None:
        customer.code = code
    if phone_number is not None:
        customer.phone_number = _phone(phone_number)
    customer.updated_at = now_ms()
    _save(customer, created=False)
    webhook_deliveries.record_customer_event("customer.updated", customer.pk)
    return customer.pk


@handler
def delete_customer(cmd: DeleteCustomer, *, if_match: IfMatch = None) -> None:
    customer = _locked(cmd.customer_id, if_match=if_match)
    # The customer row is locked, so no order can be placed for it between this check and the delete.
    if customer.orders.exists():
        raise CustomerHasOrders(f"Customer {cmd.customer_id} has orders and cannot be deleted.")
    webhook_deliveries.record_customer_event("customer.deleted", cmd.customer_id)  # its last state
    customer.delete()
    projections.apply_customer_deleted(cmd.customer_id)
